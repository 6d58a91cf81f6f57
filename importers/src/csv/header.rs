//! Header recognition: one table of header names per field, shared by every profile (so a
//! Chinese export from another bank with the usual headers works too), and the bank profile a
//! header looks like.

use crate::model::CsvProfile;

/// Header names per field, normalised by [`norm_header`]; earlier names win.
const DATE: &[&str] = &[
    "交易日期",
    "记账日期",
    "入账日期",
    "日期",
    "date",
    "bookingdate",
    "transactiondate",
    // ABC's 交易时间 is only a time of day, so it is last: it is used when there is no date
    // column at all (some exports put a date-time there).
    "交易时间",
];
const VALUE_DATE: &[&str] = &["起息日", "起息日期", "valuedate"];
const SIGNED_AMOUNT: &[&str] = &["交易金额", "金额", "发生额", "amount"];
/// (income, expense) column pairs; ICBC's booked amounts (记账金额, account currency) come
/// before its transaction amounts (交易金额, transaction currency).
const SPLIT_AMOUNT: &[(&str, &str)] = &[
    ("记账金额(收入)", "记账金额(支出)"),
    ("交易金额(收入)", "交易金额(支出)"),
    ("收入金额", "支出金额"),
    ("收入", "支出"),
    ("贷方发生额", "借方发生额"),
    ("贷方金额", "借方金额"),
    ("存入金额", "支取金额"),
    ("credit", "debit"),
];
/// A debit/credit marker beside an unsigned amount (借/贷, 支/收, D/C).
const DIRECTION: &[&str] = &[
    "借贷标志",
    "借贷方向",
    "借贷",
    "收支标志",
    "收/支",
    "收支",
    "交易方向",
    "debitcredit",
    "direction",
];
const CURRENCY: &[&str] = &["记账币种", "币种", "货币", "交易币种", "currency"];
const CP_NAME: &[&str] = &[
    "对方户名",
    "对方账户名",
    "对方账户名称",
    "对方名称",
    "对方单位",
    "counterpartyname",
    "counterparty",
];
const CP_ACCOUNT: &[&str] = &[
    "对方账号",
    "对方卡号/账号",
    "对方账户",
    "对方卡号",
    "对方帐号",
    "counterpartyaccount",
];
/// A cell holding name and account together, e.g. `张三 66666666666666`.
const CP_COMBINED: &[&str] = &["对手信息"];
const REFERENCE: &[&str] = &["附言", "交易附言", "客户摘要", "用途", "reference"];
const TEXT: &[&str] = &[
    "摘要",
    "交易摘要",
    "备注",
    "交易说明",
    "text",
    "description",
];
const BANK_TXN_ID: &[&str] = &[
    "交易流水号",
    "流水号",
    "日志号",
    "交易序号",
    "banktxnid",
    "transactionid",
];
const ACCOUNT: &[&str] = &["本方账号", "账号", "卡号", "account"];
/// The running balance after the row (ICBC 余额, ABC 本次余额, CMB 联机余额).
const BALANCE: &[&str] = &[
    "余额",
    "账户余额",
    "本次余额",
    "联机余额",
    "交易后余额",
    "balance",
    "runningbalance",
];
/// Preamble keys (`卡号: 1234****9876`) that name the statement's account.
pub(crate) const PREAMBLE_ACCOUNT: &[&str] =
    &["卡号", "账号", "帐号", "账户", "银行账号", "account"];

/// Normalises a header cell: no whitespace, `_` or `-`; ASCII lower case; ASCII parentheses.
pub(crate) fn norm_header(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && *c != '_' && *c != '-' && *c != '\u{feff}')
        .map(|c| match c {
            '（' => '(',
            '）' => ')',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Where an amount comes from.
#[derive(Debug, Clone)]
pub(crate) enum AmountSource {
    Signed(usize),
    Split {
        income: Option<usize>,
        expense: Option<usize>,
    },
}

/// Column indexes of a recognised header.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub(crate) names: Vec<String>,
    pub(crate) date: usize,
    pub(crate) value_date: Option<usize>,
    pub(crate) amounts: Vec<AmountSource>,
    pub(crate) direction: Option<usize>,
    pub(crate) currency: Vec<usize>,
    pub(crate) cp_name: Option<usize>,
    pub(crate) cp_account: Option<usize>,
    pub(crate) cp_combined: Option<usize>,
    pub(crate) reference: Option<usize>,
    pub(crate) text: Option<usize>,
    pub(crate) bank_txn_id: Option<usize>,
    pub(crate) account: Option<usize>,
    pub(crate) balance: Option<usize>,
}

fn find(names: &[String], aliases: &[&str]) -> Option<usize> {
    aliases
        .iter()
        .find_map(|a| names.iter().position(|n| n == a))
}

fn find_all(names: &[String], aliases: &[&str]) -> Vec<usize> {
    aliases
        .iter()
        .filter_map(|a| names.iter().position(|n| n == a))
        .collect()
}

impl Header {
    /// Recognises a header row: it needs a date column and an amount column (or pair).
    pub(crate) fn recognise<S: AsRef<str>>(cells: &[S]) -> Option<Header> {
        let names: Vec<String> = cells.iter().map(|c| norm_header(c.as_ref())).collect();
        let date = find(&names, DATE)?;
        let mut amounts = Vec::new();
        if let Some(i) = find(&names, SIGNED_AMOUNT) {
            amounts.push(AmountSource::Signed(i));
        }
        for (inc, exp) in SPLIT_AMOUNT {
            let income = names.iter().position(|n| n == inc);
            let expense = names.iter().position(|n| n == exp);
            if income.is_some() || expense.is_some() {
                amounts.push(AmountSource::Split { income, expense });
            }
        }
        if amounts.is_empty() {
            return None;
        }
        Some(Header {
            date,
            value_date: find(&names, VALUE_DATE),
            amounts,
            direction: find(&names, DIRECTION),
            currency: find_all(&names, CURRENCY),
            cp_name: find(&names, CP_NAME),
            cp_account: find(&names, CP_ACCOUNT),
            cp_combined: find(&names, CP_COMBINED),
            reference: find(&names, REFERENCE),
            text: find(&names, TEXT),
            bank_txn_id: find(&names, BANK_TXN_ID),
            account: find(&names, ACCOUNT),
            balance: find(&names, BALANCE),
            names,
        })
    }

    /// The bank profile a recognised header belongs to.
    pub(crate) fn profile(&self) -> CsvProfile {
        let has = |n: &str| self.names.iter().any(|x| x == n);
        let icbc = has("钞/汇") || has("记账金额(收入)") || has("交易金额(收入)");
        let abc = has("对手信息") && (has("日志号") || has("交易附言") || has("本次余额"));
        let cmb = has("联机余额") || has("客户摘要");
        let chinese = self.names.iter().any(|n| !n.is_ascii());
        match (icbc, abc, cmb) {
            (true, false, false) => CsvProfile::Icbc,
            (false, true, false) => CsvProfile::Abc,
            (false, false, true) => CsvProfile::Cmb,
            _ if chinese => CsvProfile::Chinese,
            _ => CsvProfile::Generic,
        }
    }

    /// The normalised field a column feeds, or its header for columns that are not read.
    pub(crate) fn field_name(&self, index: usize) -> String {
        let candidates: [(Option<usize>, &'static str); 12] = [
            (self.direction, "direction"),
            (Some(self.date), "booking_date"),
            (self.value_date, "value_date"),
            (self.cp_name, "counterparty_name"),
            (self.cp_account, "counterparty_account"),
            (self.cp_combined, "counterparty"),
            (self.reference, "reference"),
            (self.text, "text"),
            (self.bank_txn_id, "bank_txn_id"),
            (self.account, "account"),
            (self.currency.first().copied(), "currency"),
            (self.balance, "balance"),
        ];
        for (i, name) in candidates {
            if i == Some(index) {
                return name.to_string();
            }
        }
        let is_amount = self.amounts.iter().any(|a| match a {
            AmountSource::Signed(i) => *i == index,
            AmountSource::Split { income, expense } => {
                *income == Some(index) || *expense == Some(index)
            }
        });
        if is_amount {
            "amount".to_string()
        } else {
            self.names.get(index).cloned().unwrap_or_default()
        }
    }
}
