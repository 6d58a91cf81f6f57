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

diesel::joinable!(org_keys -> orgs (org_id));
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
);
