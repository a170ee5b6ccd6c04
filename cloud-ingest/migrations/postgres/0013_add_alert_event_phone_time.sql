-- The alert's time as the phone stated it, before clock-skew correction:
-- the same on every retry of the same event, unlike the corrected time
-- (which moves with each attempt's latency when the phone's clock is off).
-- It is the dedupe key; rows from before this migration use their time.
ALTER TABLE alert_events ADD COLUMN phone_time BIGINT;
UPDATE alert_events SET phone_time = time;
CREATE UNIQUE INDEX alert_events_once ON alert_events (patient_id, alert_id, phase, phone_time);
