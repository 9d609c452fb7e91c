//! Helpers shared by the masking tests.
#![allow(dead_code, unreachable_pub, missing_docs)]

/// Success counts for one category.
#[derive(Default, Debug)]
pub struct Score {
    pub total: u64,
    pub failed: u64,
}

impl Score {
    /// Percentage that did not fail.
    pub fn rate(&self) -> f64 {
        if self.total == 0 {
            100.0
        } else {
            100.0 * (self.total - self.failed) as f64 / self.total as f64
        }
    }
}

/// Every string (and number, as text) in a JSON value, keys included.
pub fn strings_of(v: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}

fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Number(n) => out.push(n.to_string()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                out.push(k.clone());
                walk(x, out);
            }
        }
        _ => {}
    }
}

/// A masker for `policy` (TOML), with no token keys, for the log
/// `example.com/log`.
#[allow(clippy::unwrap_used)]
pub fn masker(policy: &str) -> cairn_masking::Masker {
    cairn_masking::Masker::new(
        cairn_masking::Policy::from_toml("p.toml", policy).unwrap(),
        &cairn_masking::TokenKeys::new(),
        "example.com/log",
    )
    .unwrap()
}

/// Regions tried for a number written without an international prefix,
/// when it is checked against the numbering plans: Presidio's
/// `PhoneRecognizer` defaults (US, UK, DE, FE, IL, IN, CA, BR; its `UK`
/// and `FE` are read here as GB and FR) and the other countries the
/// corpora write numbers for (AU, JP).
const PLAN_REGIONS: [phonenumber::country::Id; 10] = {
    use phonenumber::country::Id::*;
    [US, GB, DE, FR, IL, IN, CA, BR, AU, JP]
};

/// Whether `s`, taken whole, is a valid number under libphonenumber's
/// numbering-plan metadata (the `phonenumber` crate) for any of
/// [`PLAN_REGIONS`]: what validating candidates "by country numbering
/// plans with a library made for it" would accept.
pub fn plan_valid(s: &str) -> bool {
    PLAN_REGIONS
        .iter()
        .any(|r| phonenumber::parse(Some(*r), s).is_ok_and(|n| phonenumber::is_valid(&n)))
}

/// Cairn's hand rules against numbering-plan validation, on one corpus:
/// for every labelled phone number, whether masking caught it and whether
/// the plans accept it; for every keep value, whether masking kept it and
/// whether the plans would call it a phone number.
#[derive(Default)]
pub struct PlanComparison {
    phones: Vec<(bool, bool)>,
    keeps: Vec<(bool, bool)>,
    /// A few phone numbers the plans refuse, and keep values they accept.
    examples: (Vec<String>, Vec<String>),
}

/// One row of [`PlanComparison::table`]: recall on the phone numbers and
/// precision on the keep values, in percent.
#[derive(Debug, Clone, Copy)]
pub struct PlanRow {
    pub recall: f64,
    pub keep: f64,
}

impl PlanComparison {
    /// A labelled phone number, `caught` if masking removed it.
    pub fn phone(&mut self, value: &str, caught: bool) {
        let valid = plan_valid(value);
        if !valid && self.examples.0.len() < 6 {
            self.examples.0.push(value.to_owned());
        }
        self.phones.push((caught, valid));
    }

    /// A keep value, `kept` if it survived masking.
    pub fn keep(&mut self, value: &str, kept: bool) {
        let valid = plan_valid(value);
        if valid && self.examples.1.len() < 6 {
            self.examples.1.push(value.to_owned());
        }
        self.keeps.push((kept, valid));
    }

    /// Prints the table and asserts what issue 17's question (do
    /// numbering plans, libphonenumber's metadata, beat the hand rules?)
    /// measured: the plans refuse numbers the rules rightly mask
    /// (unassigned area codes and ranges are still someone's number as
    /// written), and the rules lose no keep value the plans would save.
    pub fn assert_rules_win(&self, corpus: &str) {
        let [hand, plan, both] = self.table(corpus);
        assert!(
            plan.recall < hand.recall && both.recall < hand.recall && both.keep <= hand.keep,
            "numbering plans beat the hand rules on the {corpus}: {hand:?} {plan:?} {both:?}"
        );
    }

    /// Prints the table and returns (hand rules, plans alone, hand rules
    /// then plans): the last is the rules' candidates validated by the plans.
    pub fn table(&self, corpus: &str) -> [PlanRow; 3] {
        let pct = |n: usize, of: usize| {
            if of == 0 {
                100.0
            } else {
                100.0 * n as f64 / of as f64
            }
        };
        let recall = |f: &dyn Fn(&(bool, bool)) -> bool| {
            pct(
                self.phones.iter().filter(|p| f(p)).count(),
                self.phones.len(),
            )
        };
        // A keep value is lost when the detector would mask it.
        let keep = |f: &dyn Fn(&(bool, bool)) -> bool| {
            pct(
                self.keeps.iter().filter(|k| !f(k)).count(),
                self.keeps.len(),
            )
        };
        let rows = [
            PlanRow {
                recall: recall(&|p| p.0),
                keep: keep(&|k| !k.0),
            },
            PlanRow {
                recall: recall(&|p| p.1),
                keep: keep(&|k| k.1),
            },
            PlanRow {
                recall: recall(&|p| p.0 && p.1),
                keep: keep(&|k| !k.0 && k.1),
            },
        ];
        eprintln!(
            "\n{corpus}: {} phone numbers, {} keep values\n| validator | phone recall | keep precision |\n|---|---|---|",
            self.phones.len(),
            self.keeps.len()
        );
        for (name, r) in [
            "hand rules (Cairn)",
            "numbering plans (phonenumber)",
            "hand rules, then plans",
        ]
        .iter()
        .zip(&rows)
        {
            eprintln!("| {name} | {:.2}% | {:.2}% |", r.recall, r.keep);
        }
        eprintln!(
            "numbers the plans refuse: {:?}\nkeep values the plans call numbers: {:?}",
            self.examples.0, self.examples.1
        );
        rows
    }
}
