DROP TABLE reconciliations;
DROP TABLE complaints;
ALTER TABLE recipients DROP COLUMN entitlement_minor;
