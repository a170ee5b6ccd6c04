-- PostgreSQL dialect of ../0017_nightscout_entry_trends.sql: the check
-- constraint is replaced in place.
ALTER TABLE nightscout_documents DROP CONSTRAINT nightscout_documents_collection_check;
ALTER TABLE nightscout_documents ADD CONSTRAINT nightscout_documents_collection_check
    CHECK (collection IN ('treatments', 'devicestatus', 'entries'));
