//! The approval policy: a versioned decision table that turns the facts of a quote into the
//! approval levels it needs, in order, each with the reasons. Pure.
//!
//! Each rule names a level and one condition on the facts; a quote needs every level whose rule
//! matches. Levels come out in the policy's level order (e.g. manager before finance before deal
//! desk), once each, with every matching rule listed as a reason. A quote that matches nothing is
//! approval-free. Raising a discount, the deal size or the non-standard terms, or lowering the
//! margin, never removes a level (the conditions are monotone).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "when", content = "value")]
pub enum Condition {
    /// Some line's discount (percent off list) is above this.
    LineDiscountAbove(Decimal),
    /// The whole quote's discount (percent off list) is above this.
    OverallDiscountAbove(Decimal),
    /// The deal's net first-year value is above this (in the quote's currency).
    DealSizeAbove(Decimal),
    /// The margin (percent) is below this, or unknown.
    MarginBelow(Decimal),
    NonStandardTerms,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub code: String,
    pub level: String,
    pub condition: Condition,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub version: i32,
    /// Approval levels in the order approvals happen.
    pub levels: Vec<String>,
    pub rules: Vec<Rule>,
    /// When approvers are reminded and when a task escalates, and to whom.
    #[serde(default)]
    pub timers: Timers,
}

/// The approval process's clock: ISO 8601 durations from when a level's task is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timers {
    pub reminder_after: String,
    pub escalate_after: String,
    /// The group an escalated task goes to.
    pub escalation_group: String,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            reminder_after: "P1D".into(),
            escalate_after: "P3D".into(),
            escalation_group: "sales-director".into(),
        }
    }
}

/// What the policy looks at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub line_discounts_pct: Vec<Decimal>,
    pub overall_discount_pct: Decimal,
    pub deal_size: Decimal,
    pub margin_pct: Option<Decimal>,
    pub non_standard_terms: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub level: String,
    pub rule: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub policy_version: i32,
    /// Required levels, in approval order; empty when no approval is needed.
    pub levels: Vec<String>,
    pub reasons: Vec<Reason>,
}

impl Decision {
    pub fn approval_free(&self) -> bool {
        self.levels.is_empty()
    }
}

fn matches(c: &Condition, f: &Facts) -> Option<String> {
    match c {
        Condition::LineDiscountAbove(x) => f
            .line_discounts_pct
            .iter()
            .copied()
            .max()
            .filter(|d| d > x)
            .map(|d| format!("a line is discounted {d}% (above {x}%)")),
        Condition::OverallDiscountAbove(x) => (f.overall_discount_pct > *x).then(|| {
            format!(
                "the quote is discounted {}% (above {x}%)",
                f.overall_discount_pct
            )
        }),
        Condition::DealSizeAbove(x) => {
            (f.deal_size > *x).then(|| format!("the deal is worth {} (above {x})", f.deal_size))
        }
        Condition::MarginBelow(x) => match f.margin_pct {
            Some(m) if m >= *x => None,
            Some(m) => Some(format!("the margin is {m}% (below {x}%)")),
            None => Some(format!("the margin is unknown (the floor is {x}%)")),
        },
        Condition::NonStandardTerms => f
            .non_standard_terms
            .then(|| "the quote has non-standard terms".to_owned()),
    }
}

pub fn decide(policy: &Policy, facts: &Facts) -> Decision {
    let mut reasons: Vec<Reason> = policy
        .rules
        .iter()
        .filter_map(|r| {
            matches(&r.condition, facts).map(|detail| Reason {
                level: r.level.clone(),
                rule: r.code.clone(),
                detail,
            })
        })
        .collect();
    let order = |level: &str| {
        policy
            .levels
            .iter()
            .position(|l| l == level)
            .unwrap_or(usize::MAX)
    };
    reasons.sort_by(|a, b| {
        order(&a.level)
            .cmp(&order(&b.level))
            .then(a.rule.cmp(&b.rule))
    });
    let mut levels: Vec<String> = Vec::new();
    for r in &reasons {
        if !levels.contains(&r.level) {
            levels.push(r.level.clone());
        }
    }
    Decision {
        policy_version: policy.version,
        levels,
        reasons,
    }
}

/// The policy a tenant has before it sets its own: manager above 15 % off a line, finance above
/// 25 % off the quote, deal desk above 250,000 first-year value or with non-standard terms.
pub fn default_policy() -> Policy {
    Policy {
        version: 0,
        levels: vec!["manager".into(), "finance".into(), "deal-desk".into()],
        rules: vec![
            Rule {
                code: "LINE-DISCOUNT-15".into(),
                level: "manager".into(),
                condition: Condition::LineDiscountAbove(Decimal::from(15)),
            },
            Rule {
                code: "QUOTE-DISCOUNT-25".into(),
                level: "finance".into(),
                condition: Condition::OverallDiscountAbove(Decimal::from(25)),
            },
            Rule {
                code: "DEAL-SIZE-250K".into(),
                level: "deal-desk".into(),
                condition: Condition::DealSizeAbove(Decimal::from(250_000)),
            },
            Rule {
                code: "NON-STANDARD-TERMS".into(),
                level: "deal-desk".into(),
                condition: Condition::NonStandardTerms,
            },
        ],
        timers: Timers::default(),
    }
}

/// Discount depth of a line or a quote: first-year discount over first-year list, in percent.
pub fn discount_pct(
    one_time_list: Decimal,
    one_time_discount: Decimal,
    recurring_list: Decimal,
    recurring_discount: Decimal,
) -> Decimal {
    let twelve = Decimal::from(12);
    let list = one_time_list + recurring_list * twelve;
    if list.is_zero() {
        return Decimal::ZERO;
    }
    ((one_time_discount + recurring_discount * twelve) * Decimal::ONE_HUNDRED / list).round_dp(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(x: i64) -> Decimal {
        Decimal::from(x)
    }

    fn policy() -> Policy {
        Policy {
            version: 3,
            levels: vec!["manager".into(), "finance".into(), "deal-desk".into()],
            rules: vec![
                Rule {
                    code: "LINE-15".into(),
                    level: "manager".into(),
                    condition: Condition::LineDiscountAbove(d(15)),
                },
                Rule {
                    code: "QUOTE-25".into(),
                    level: "finance".into(),
                    condition: Condition::OverallDiscountAbove(d(25)),
                },
                Rule {
                    code: "MARGIN-20".into(),
                    level: "finance".into(),
                    condition: Condition::MarginBelow(d(20)),
                },
                Rule {
                    code: "BIG-DEAL".into(),
                    level: "deal-desk".into(),
                    condition: Condition::DealSizeAbove(d(250_000)),
                },
                Rule {
                    code: "TERMS".into(),
                    level: "deal-desk".into(),
                    condition: Condition::NonStandardTerms,
                },
            ],
            timers: Timers::default(),
        }
    }

    fn facts(line: i64, overall: i64, size: i64, margin: Option<i64>, terms: bool) -> Facts {
        Facts {
            line_discounts_pct: vec![d(0), d(line)],
            overall_discount_pct: d(overall),
            deal_size: d(size),
            margin_pct: margin.map(d),
            non_standard_terms: terms,
        }
    }

    #[test]
    fn levels_come_in_policy_order_once_each_with_every_reason() {
        assert!(decide(&policy(), &facts(10, 5, 10_000, Some(40), false)).approval_free());
        let one = decide(&policy(), &facts(20, 5, 10_000, Some(40), false));
        assert_eq!(one.levels, ["manager"]);
        let all = decide(&policy(), &facts(30, 30, 300_000, Some(10), true));
        assert_eq!(all.levels, ["manager", "finance", "deal-desk"]);
        let rules: Vec<&str> = all.reasons.iter().map(|r| r.rule.as_str()).collect();
        assert_eq!(
            rules,
            ["LINE-15", "MARGIN-20", "QUOTE-25", "BIG-DEAL", "TERMS"]
        );
        assert_eq!(all.policy_version, 3);
        assert_eq!(
            decide(&policy(), &facts(0, 0, 1, None, false)).levels,
            ["finance"],
            "an unknown margin needs finance"
        );
    }

    proptest! {
        #[test]
        fn more_discount_size_or_risk_never_removes_a_level(
            line in 0i64..60, overall in 0i64..60, size in 0i64..500_000, margin in 0i64..60, terms in any::<bool>(),
            more_line in 0i64..20, more_overall in 0i64..20, more_size in 0i64..100_000, less_margin in 0i64..20,
        ) {
            let p = policy();
            let before = decide(&p, &facts(line, overall, size, Some(margin), terms));
            let after = decide(&p, &facts(line + more_line, overall + more_overall, size + more_size, Some(margin - less_margin), true));
            for level in &before.levels {
                prop_assert!(after.levels.contains(level), "{level} disappeared");
            }
            let order: Vec<usize> = after.levels.iter().map(|l| p.levels.iter().position(|x| x == l).unwrap()).collect();
            prop_assert!(order.windows(2).all(|w| w[0] < w[1]), "levels out of order: {:?}", after.levels);
        }
    }
}
