DROP TABLE bank_rows;
DROP TABLE statement_sections;
DROP TABLE statements;
DROP TABLE bank_accounts;
