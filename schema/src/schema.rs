//! Table definitions, kept by hand in step with `migrations/` (ids are 64-bit everywhere).

diesel::table! {
    orgs (id) {
        id -> BigInt,
        code -> Text,
        name -> Text,
        role -> Text,
        parent_id -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    org_keys (id) {
        id -> BigInt,
        org_id -> BigInt,
        key_id -> Text,
        public_key -> Binary,
        valid_from -> BigInt,
        valid_until -> Nullable<BigInt>,
        registered_by_org_id -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> BigInt,
        org_id -> BigInt,
        token_sha256 -> Binary,
        label -> Text,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    submissions (id) {
        id -> BigInt,
        nonce -> Text,
        org_id -> BigInt,
        key_id -> Text,
        purpose -> Text,
        payload_sha256 -> Binary,
        signed_at -> Text,
        signature -> Binary,
        recorded_at -> BigInt,
    }
}

diesel::table! {
    programs (id) {
        id -> BigInt,
        code -> Text,
        name -> Text,
        fiscal_year -> Integer,
        currency -> Text,
        minor_units -> Integer,
        standard_amount_minor -> BigInt,
        period_granularity -> Text,
        owner_org_id -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    recipients (id) {
        id -> BigInt,
        pseudonym -> Text,
        home_org_id -> BigInt,
        status -> Text,
        status_date -> Nullable<Text>,
        account_tag -> Text,
        personal_data -> Binary,
        created_at -> BigInt,
        updated_at -> BigInt,
        entitlement_minor -> Nullable<BigInt>,
    }
}

diesel::table! {
    personal_data_reads (id) {
        id -> BigInt,
        recipient_id -> BigInt,
        org_id -> BigInt,
        token_id -> Nullable<BigInt>,
        reason -> Text,
        read_at -> BigInt,
    }
}

diesel::table! {
    ledger_entries (seq) {
        seq -> BigInt,
        kind -> Text,
        program_id -> BigInt,
        period -> Text,
        source_seq -> Nullable<BigInt>,
        from_org_id -> Nullable<BigInt>,
        to_org_id -> Nullable<BigInt>,
        to_recipient -> Nullable<Text>,
        amount_minor -> BigInt,
        reference -> Text,
        memo -> Text,
        author_org_id -> BigInt,
        submission_id -> BigInt,
        value_date -> Text,
        recorded_at -> BigInt,
        prev_hash -> Binary,
        hash -> Binary,
    }
}

diesel::table! {
    ledger_funds (seq) {
        seq -> BigInt,
        remaining_minor -> BigInt,
        reversed_by -> Nullable<BigInt>,
    }
}

diesel::table! {
    bank_accounts (id) {
        id -> BigInt,
        org_id -> BigInt,
        account -> Text,
        currency -> Text,
        label -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    statements (id) {
        id -> BigInt,
        file_sha256 -> Binary,
        size_bytes -> BigInt,
        file_name -> Text,
        format -> Text,
        manifest -> Text,
        org_id -> BigInt,
        submission_id -> BigInt,
        imported_at -> BigInt,
        rows_total -> BigInt,
        rows_duplicate -> BigInt,
        confirmed_strong -> BigInt,
        confirmed_weak -> BigInt,
        returned -> BigInt,
        unmatched -> BigInt,
        first_row_id -> Nullable<BigInt>,
        last_row_id -> Nullable<BigInt>,
        first_seq -> Nullable<BigInt>,
        last_seq -> Nullable<BigInt>,
    }
}

diesel::table! {
    statement_sections (id) {
        id -> BigInt,
        statement_id -> BigInt,
        account_id -> BigInt,
        location -> Text,
        bank_statement_id -> Nullable<Text>,
        currency -> Nullable<Text>,
        from_date -> Nullable<Text>,
        to_date -> Nullable<Text>,
        opening_minor -> Nullable<BigInt>,
        closing_minor -> Nullable<BigInt>,
    }
}

diesel::table! {
    bank_rows (id) {
        id -> BigInt,
        statement_id -> BigInt,
        location -> Text,
        account_id -> BigInt,
        booking_date -> Text,
        value_date -> Nullable<Text>,
        amount_minor -> BigInt,
        currency -> Text,
        counterparty_name_masked -> Nullable<Text>,
        counterparty_account_masked -> Nullable<Text>,
        counterparty_account_tag -> Nullable<Text>,
        reference -> Nullable<Text>,
        bank_txn_id -> Nullable<Text>,
        text -> Nullable<Text>,
        reversal -> Bool,
        return_reason -> Nullable<Text>,
        fingerprint -> Binary,
        status -> Text,
        match_strength -> Nullable<Text>,
        matched_seq -> Nullable<BigInt>,
        entry_seq -> Nullable<BigInt>,
        duplicate_of -> Nullable<BigInt>,
        note -> Nullable<Text>,
    }
}

diesel::table! {
    complaints (id) {
        id -> BigInt,
        program_id -> BigInt,
        payment_seq -> BigInt,
        kind -> Text,
        amount_received_minor -> Nullable<BigInt>,
        client_tag -> Text,
        filed_at -> BigInt,
    }
}

diesel::table! {
    reconciliations (id) {
        id -> BigInt,
        requested_by_org_id -> BigInt,
        params -> Text,
        status -> Text,
        created_at -> BigInt,
        started_at -> Nullable<BigInt>,
        finished_at -> Nullable<BigInt>,
        ledger_seq -> Nullable<BigInt>,
        head_hash -> Nullable<Text>,
        report_sha256 -> Nullable<Binary>,
        report_bytes -> Nullable<BigInt>,
        findings -> Nullable<BigInt>,
        error_code -> Nullable<Text>,
        error_message -> Nullable<Text>,
    }
}

diesel::joinable!(org_keys -> orgs (org_id));
diesel::joinable!(complaints -> ledger_entries (payment_seq));
diesel::joinable!(reconciliations -> orgs (requested_by_org_id));
diesel::joinable!(bank_accounts -> orgs (org_id));
diesel::joinable!(statements -> submissions (submission_id));
diesel::joinable!(statement_sections -> statements (statement_id));
diesel::joinable!(bank_rows -> statements (statement_id));
diesel::joinable!(bank_rows -> bank_accounts (account_id));
diesel::joinable!(api_tokens -> orgs (org_id));
diesel::joinable!(submissions -> orgs (org_id));
diesel::joinable!(programs -> orgs (owner_org_id));
diesel::joinable!(recipients -> orgs (home_org_id));
diesel::joinable!(personal_data_reads -> recipients (recipient_id));
diesel::joinable!(ledger_entries -> programs (program_id));
diesel::joinable!(ledger_entries -> submissions (submission_id));

diesel::allow_tables_to_appear_in_same_query!(
    orgs,
    org_keys,
    api_tokens,
    submissions,
    programs,
    recipients,
    personal_data_reads,
    ledger_entries,
    ledger_funds,
    bank_accounts,
    statements,
    statement_sections,
    bank_rows,
    complaints,
    reconciliations,
);
