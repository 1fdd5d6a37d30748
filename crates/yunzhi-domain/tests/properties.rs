//! Properties of the domain's rules, over many generated inputs.

use proptest::prelude::*;
use yunzhi_domain::password;
use yunzhi_domain::system::{MlpsLevel, PeriodicLoad, PeriodicLoadInput, Quota, QuotaInput};
use yunzhi_domain::unit::CreditCode;

const ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

fn code_prefix() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(ALPHABET.chars().collect::<Vec<_>>()), 17)
        .prop_map(|cs| cs.into_iter().collect())
}

proptest! {
    #[test]
    fn every_credit_code_completed_with_its_check_character_is_accepted(prefix in code_prefix()) {
        let code = CreditCode::with_check_character(&prefix).unwrap();
        prop_assert!(CreditCode::parse("credit_code", &code).is_ok());
    }

    #[test]
    fn every_single_character_typo_in_a_credit_code_is_caught(
        prefix in code_prefix(),
        pos in 0usize..18,
        replacement in proptest::sample::select(ALPHABET.chars().collect::<Vec<_>>()),
    ) {
        let code = CreditCode::with_check_character(&prefix).unwrap();
        let mut chars: Vec<char> = code.chars().collect();
        prop_assume!(chars[pos] != replacement);
        chars[pos] = replacement;
        let typo: String = chars.into_iter().collect();
        prop_assert!(CreditCode::parse("credit_code", &typo).is_err());
    }

    #[test]
    fn an_mlps_level_is_accepted_exactly_when_it_is_one_to_three(level in -10i64..10) {
        let parsed = MlpsLevel::parse("mlps_level", level);
        prop_assert_eq!(parsed.is_ok(), (1..=3).contains(&level));
        if let Err(e) = parsed {
            prop_assert_eq!(e.first().article, Some(5));
        }
    }

    #[test]
    fn a_quota_in_range_is_accepted_unless_it_grants_nothing(
        vcpu in 0i64..=4096, memory in 0i64..=32768, storage in 0i64..=4_194_304,
    ) {
        let q = Quota::parse(&QuotaInput { vcpu, memory_gib: memory, storage_gib: storage });
        prop_assert_eq!(q.is_ok(), vcpu + memory + storage > 0);
    }

    #[test]
    fn a_quota_out_of_range_names_exactly_the_fields_at_fault(vcpu in -5000i64..5000, memory in -5i64..40000) {
        let q = Quota::parse(&QuotaInput { vcpu, memory_gib: memory, storage_gib: 1 });
        let mut expected = Vec::new();
        if !(0..=4096).contains(&vcpu) { expected.push("quota.vcpu".to_string()); }
        if !(0..=32768).contains(&memory) { expected.push("quota.memory_gib".to_string()); }
        let got: Vec<String> = q.err().map(|e| e.0.into_iter().map(|f| f.field).collect()).unwrap_or_default();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn busy_months_come_back_sorted_and_unique(months in proptest::collection::vec(1i64..=12, 1..20)) {
        let distinct: std::collections::BTreeSet<_> = months.iter().copied().collect();
        let parsed = PeriodicLoad::parse(&PeriodicLoadInput { description: "季节性".into(), months: months.clone() });
        if distinct.len() == 12 {
            prop_assert!(parsed.is_err());
        } else {
            let p = parsed.unwrap();
            let expected: Vec<u8> = distinct.into_iter().map(|m| m as u8).collect();
            prop_assert_eq!(p.months, expected);
        }
    }

    #[test]
    fn no_password_shorter_than_the_minimum_is_accepted(pw in "\\PC{0,9}") {
        prop_assume!(pw.chars().count() < password::MIN_LENGTH);
        prop_assert!(password::check("password", &pw, "someone").is_err());
    }
}
