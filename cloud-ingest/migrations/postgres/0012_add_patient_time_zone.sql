-- A patient's IANA time zone (e.g. Europe/Berlin): the AGP and the daily
-- overlays are by the patient's local time of day. NULL reads as UTC.
ALTER TABLE patients ADD COLUMN time_zone TEXT;
