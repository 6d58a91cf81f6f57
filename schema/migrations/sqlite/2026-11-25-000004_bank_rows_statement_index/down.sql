DROP INDEX bank_rows_statement;
