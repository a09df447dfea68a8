use super::*;
use proptest::prelude::*;

// SPEC §4, SMS1, X = 3, hotline 19125.
const EXPECTED_SMS1: &str = "مرحباً،\nلقد حاولنا الاتصال بك منذ قليل ولكن لم نتمكن من الوصول إليك\nنذكركم بدفع باقة التنظيف.\nيرجى العلم بأننا لن نستطيع تفعيل الباقة حتى يتم الدفع.\nللمزيد من المعلومات إتصل بنا على 19125";
// SPEC §4, SMS2, X = 3, hotline 19125.
const EXPECTED_SMS2: &str = "مرحباً،\nلقد حاولنا الاتصال بك منذ قليل ولكن لم نتمكن من الوصول إليك.\nيرجى العلم بأننا سوف نقوم بإلغاء باقة التنظيف لعدم الدفع حتى الأن.\nنقدر تفهمكم.\nللمزيد من المعلومات إتصل بنا على 19125.";
// SPEC §4, SMS3, X = 3, hotline 19125.
const EXPECTED_SMS3: &str = "مرحباً،\nلقد حاولنا الاتصال بك منذ قليل ولكن لم نتمكن من الوصول إليك.\nيرجى العلم بإن مدة باقة التنظيف قد انتهت.\nلديك 3 زيارات متبقية في الباقة.\nفي حال عدم تحديد مواعيد الزيارات المتبقية في خلال إسبوعين سوف يتم تعطيل الباقة بشكل نهائي.\nنقدر تفهمكم.\nللمزيد من المعلومات إتصل بنا على 19125.";
// SPEC §4, SMS4, X = 3, hotline 19125.
const EXPECTED_SMS4: &str = "مرحباً،\nلقد حاولنا الاتصال بك منذ قليل ولكن لم نتمكن من الوصول إليك.\nيرجى العلم بإن مدة باقة التنظيف قد انتهت.\nلديك 3 زيارات متبقية في الباقة.\nفي حال عدم تحديد مواعيد الزيارات المتبقية في خلال إسبوع سوف يتم تعطيل الباقة بشكل نهائي.\nنقدر تفهمكم.\nللمزيد من المعلومات إتصل بنا على 19125.";
// SPEC §4, SMS5, X = 3, hotline 19125.
const EXPECTED_SMS5: &str = "مرحباً،\nلقد حاولنا الاتصال بك بخصوص زيارة اليوم في باقة تنظيف و لكن لم نستطيع الوصول اليكم.\nيرجى العلم بأن زيارة إليوم لن يمكننا تأجيلها لميعاد أخر.\nنأسف لاخباركم بأن هذه الزيارة تم احتسابها في الباقة.\nنقدر تفهمكم\nللمزيد من المعلومات إتصل بنا على 19125.";

fn vars_x3() -> SmsVars {
    SmsVars { remaining_visits: Some(3), ..SmsVars::default() }
}

fn full_vars() -> SmsVars {
    SmsVars {
        remaining_visits: Some(3),
        link: Some("https://fkh.me/s/Ab12Cd".into()),
        coupon_code: Some("FK15-7QX2".into()),
        discount: Some("15".into()),
        valid_until: Some("2026-04-01".into()),
        date: Some("2026-04-01".into()),
        time: Some("14:00".into()),
    }
}

fn body(template: TemplateId, language: Language, vars: &SmsVars, hotline: &str) -> String {
    match render(template, language, vars, hotline) {
        Ok((_, body)) => body,
        Err(e) => panic!("{e}"),
    }
}

const FIXED: [(TemplateId, &str); 5] = [
    (TemplateId::Sms1, EXPECTED_SMS1),
    (TemplateId::Sms2, EXPECTED_SMS2),
    (TemplateId::Sms3, EXPECTED_SMS3),
    (TemplateId::Sms4, EXPECTED_SMS4),
    (TemplateId::Sms5, EXPECTED_SMS5),
];

const BILINGUAL: [TemplateId; 4] =
    [TemplateId::StfLink, TemplateId::StatusUpdate, TemplateId::DiscountOffer, TemplateId::RescheduleConfirmation];

#[test]
fn sms1_to_sms5_are_the_exact_spec_texts() {
    for (template, expected) in FIXED {
        for language in [Language::Ar, Language::En] {
            assert_eq!(
                render(template, language, &vars_x3(), "19125"),
                Ok((Language::Ar, expected.to_string())),
                "{template} requested in {language:?}"
            );
        }
    }
}

#[test]
fn sms1_alone_has_no_final_period() {
    assert!(EXPECTED_SMS1.ends_with("على 19125"));
    for (_, expected) in &FIXED[1..] {
        assert!(expected.ends_with("على 19125."));
    }
}

#[test]
fn hotline_replaces_19125_and_nothing_else() {
    for (template, expected) in FIXED {
        let got = body(template, Language::Ar, &vars_x3(), "16000");
        assert_eq!(got, expected.replace("19125", "16000"), "{template}");
        assert!(!got.contains("19125"));
    }
    for template in BILINGUAL {
        for language in [Language::Ar, Language::En] {
            let got = body(template, language, &full_vars(), "16000");
            assert!(got.contains("16000."), "{template} {language:?}: {got}");
            assert!(!got.contains("19125"));
        }
    }
}

#[test]
fn remaining_visits_is_substituted() {
    let vars = SmsVars { remaining_visits: Some(12), ..SmsVars::default() };
    for (template, expected) in [(TemplateId::Sms3, EXPECTED_SMS3), (TemplateId::Sms4, EXPECTED_SMS4)] {
        assert_eq!(body(template, Language::Ar, &vars, "19125"), expected.replace("لديك 3 زيارات", "لديك 12 زيارات"));
    }
}

#[test]
fn sms3_and_sms4_differ_only_by_the_grace_period() {
    let sms3 = body(TemplateId::Sms3, Language::Ar, &vars_x3(), "19125");
    let sms4 = body(TemplateId::Sms4, Language::Ar, &vars_x3(), "19125");
    assert_ne!(sms3, sms4);
    assert_eq!(sms3.matches("في خلال إسبوعين").count(), 1);
    assert_eq!(sms3.replace("في خلال إسبوعين", "في خلال إسبوع"), sms4);
}

#[test]
fn missing_vars_are_named() {
    type Case = (TemplateId, &'static str, fn(&mut SmsVars));
    let cases: [Case; 8] = [
        (TemplateId::Sms3, "remaining_visits", |v| v.remaining_visits = None),
        (TemplateId::Sms4, "remaining_visits", |v| v.remaining_visits = None),
        (TemplateId::StfLink, "link", |v| v.link = None),
        (TemplateId::DiscountOffer, "coupon_code", |v| v.coupon_code = None),
        (TemplateId::DiscountOffer, "discount", |v| v.discount = None),
        (TemplateId::DiscountOffer, "valid_until", |v| v.valid_until = None),
        (TemplateId::RescheduleConfirmation, "date", |v| v.date = None),
        (TemplateId::RescheduleConfirmation, "time", |v| v.time = None),
    ];
    for (template, var, remove) in cases {
        let mut vars = full_vars();
        remove(&mut vars);
        for language in [Language::Ar, Language::En] {
            assert_eq!(render(template, language, &vars, "19125"), Err(RenderError { template, var }));
        }
    }
    let err = RenderError { template: TemplateId::StfLink, var: "link" };
    assert_eq!(err.to_string(), "template STF_LINK needs link");
}

#[test]
fn blank_vars_and_hotline_count_as_missing() {
    let vars = SmsVars { link: Some("  ".into()), ..full_vars() };
    assert_eq!(render(TemplateId::StfLink, Language::En, &vars, "19125"), Err(RenderError { template: TemplateId::StfLink, var: "link" }));
    assert_eq!(render(TemplateId::Sms1, Language::Ar, &full_vars(), ""), Err(RenderError { template: TemplateId::Sms1, var: "hotline" }));
}

#[test]
fn templates_without_vars_need_none() {
    for template in [TemplateId::Sms1, TemplateId::Sms2, TemplateId::Sms5, TemplateId::StatusUpdate] {
        assert!(render(template, Language::En, &SmsVars::default(), "19125").is_ok());
    }
}

#[test]
fn bilingual_templates_follow_the_requested_language() {
    let vars = full_vars();
    for template in BILINGUAL {
        let (lang, ar) = match render(template, Language::Ar, &vars, "19125") {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(lang, Language::Ar);
        assert!(ar.starts_with("مرحباً،\n"), "{template}: {ar}");
        assert!(ar.ends_with("\nللمزيد من المعلومات إتصل بنا على 19125."));
        assert_eq!(encoding(&ar), Encoding::Ucs2);

        let (lang, en) = match render(template, Language::En, &vars, "19125") {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(lang, Language::En);
        assert!(en.starts_with("Hello,\n"), "{template}: {en}");
        assert!(en.ends_with("\nFor more information call us on 19125."));
        assert!(en.is_ascii());
        assert_eq!(encoding(&en), Encoding::Gsm7, "{template}: {en}");
        // One GSM part each (with a short link), so English costs a
        // single message.
        assert_eq!(segments(&en), 1, "{template}: {en}");
    }
}

#[test]
fn bilingual_texts_carry_their_vars() {
    let vars = full_vars();
    assert_eq!(
        body(TemplateId::StfLink, Language::En, &vars, "19125"),
        "Hello,\nWe could not reach you by phone to reschedule your appointment.\n\
         Pick a new time here:\nhttps://fkh.me/s/Ab12Cd\n\
         For more information call us on 19125."
    );
    assert_eq!(
        body(TemplateId::DiscountOffer, Language::En, &vars, "19125"),
        "Hello,\nYour appointment has been cancelled.\n\
         Enjoy 15% off your next booking with code FK15-7QX2, valid until 2026-04-01.\n\
         For more information call us on 19125."
    );
    assert_eq!(
        body(TemplateId::RescheduleConfirmation, Language::En, &vars, "19125"),
        "Hello,\nYour appointment has been rescheduled to 2026-04-01 at 14:00.\n\
         For more information call us on 19125."
    );
    let ar = body(TemplateId::StfLink, Language::Ar, &vars, "19125");
    assert!(ar.contains("\nhttps://fkh.me/s/Ab12Cd\n"));
    let ar = body(TemplateId::DiscountOffer, Language::Ar, &vars, "19125");
    assert!(ar.contains("خصم 15%") && ar.contains("FK15-7QX2") && ar.contains("2026-04-01"));
    let ar = body(TemplateId::RescheduleConfirmation, Language::Ar, &vars, "19125");
    assert!(ar.contains("2026-04-01") && ar.contains("14:00"));
}

#[test]
fn substituted_values_are_not_expanded_again() {
    let vars = SmsVars { link: Some("https://x.test/{hotline}".into()), ..full_vars() };
    let got = body(TemplateId::StfLink, Language::En, &vars, "19125");
    assert!(got.contains("\nhttps://x.test/{hotline}\n"));
}

#[test]
fn gsm_alphabet_is_exactly_the_default_table_plus_extension() {
    // GSM 03.38 default alphabet, 0x00..=0x7F, without ESC (0x1B).
    let basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                 ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    assert_eq!(basic.chars().count(), 127);
    let extension = "\u{0C}^{}\\[~]|€";
    for c in basic.chars() {
        assert_eq!(gsm_septets(c), Some(1), "{c:?}");
    }
    for c in extension.chars() {
        assert_eq!(gsm_septets(c), Some(2), "{c:?}");
    }
    assert_eq!(encoding(basic), Encoding::Gsm7);
    assert_eq!(encoding(extension), Encoding::Gsm7);
    for c in ['`', 'ç', 'á', '\t', '\u{1B}', '’', '“', 'ب', '،', '😀', '\u{A0}'] {
        assert_eq!(encoding(&format!("Hello {c}")), Encoding::Ucs2, "{c:?}");
    }
    assert_eq!(encoding(""), Encoding::Gsm7);
}

#[test]
fn gsm7_segment_limits() {
    let a = |n: usize| "a".repeat(n);
    assert_eq!(segments(""), 1);
    assert_eq!(segments(&a(1)), 1);
    assert_eq!(segments(&a(160)), 1);
    assert_eq!(segments(&a(161)), 2);
    assert_eq!(segments(&a(306)), 2);
    assert_eq!(segments(&a(307)), 3);
    assert_eq!(segments(&a(459)), 3);
    assert_eq!(segments(&a(460)), 4);
}

#[test]
fn gsm7_extension_chars_count_double() {
    assert_eq!(segments(&"{".repeat(80)), 1);
    assert_eq!(segments(&"€".repeat(81)), 2);
    assert_eq!(segments(&format!("{}{}", "a".repeat(158), "~")), 1);
    assert_eq!(segments(&format!("{}{}", "a".repeat(159), "~")), 2);
    // 306 septets would fit two parts of 153, but the escape pair may not
    // straddle the boundary after 152 septets: 152 | 2 + 152 -> 3 parts.
    assert_eq!(segments(&format!("{}€{}", "a".repeat(152), "a".repeat(152))), 3);
    assert_eq!(segments(&format!("{}€{}", "a".repeat(151), "a".repeat(153))), 2);
}

#[test]
fn ucs2_segment_limits() {
    let ar = |n: usize| "ب".repeat(n);
    assert_eq!(segments(&ar(1)), 1);
    assert_eq!(segments(&ar(70)), 1);
    assert_eq!(segments(&ar(71)), 2);
    assert_eq!(segments(&ar(134)), 2);
    assert_eq!(segments(&ar(135)), 3);
    // One non-GSM char switches the whole body to UCS-2.
    assert_eq!(segments(&format!("{}ç", "a".repeat(69))), 1);
    assert_eq!(segments(&format!("{}ç", "a".repeat(70))), 2);
}

#[test]
fn ucs2_counts_utf16_units_and_keeps_surrogate_pairs_whole() {
    assert_eq!(segments(&"😀".repeat(35)), 1);
    assert_eq!(segments(&"😀".repeat(36)), 2);
    // 134 units would fit two parts of 67, but the pair may not straddle
    // the boundary after 66 units: 66 | 2 + 66 -> 3 parts.
    assert_eq!(segments(&format!("{}😀{}", "ب".repeat(66), "ب".repeat(66))), 3);
    assert_eq!(segments(&format!("{}😀{}", "ب".repeat(65), "ب".repeat(67))), 2);
}

#[test]
fn spec_texts_are_ucs2_multipart() {
    // UTF-16 units with X = 3 and hotline 19125 (all BMP, so units =
    // chars), parts of 67:
    //   SMS1 187 -> 67 + 67 + 53      = 3
    //   SMS2 188 -> 67 + 67 + 54      = 3
    //   SMS3 286 -> 67 * 4 + 18       = 5
    //   SMS4 284 -> 67 * 4 + 16       = 5 (SMS3 less "ين")
    //   SMS5 253 -> 67 * 3 + 52       = 4
    let expected = [(187, 3), (188, 3), (286, 5), (284, 5), (253, 4)];
    for ((template, text), (units, parts)) in FIXED.into_iter().zip(expected) {
        let got = body(template, Language::Ar, &vars_x3(), "19125");
        assert_eq!(got, text);
        assert_eq!(encoding(&got), Encoding::Ucs2, "{template}");
        assert_eq!(got.encode_utf16().count(), units, "{template}");
        assert_eq!(segments(&got), parts, "{template}");
    }
}

fn text(pool: &'static [char], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(pool), 0..max).prop_map(|chars| chars.into_iter().collect())
}

const GSM_BASIC: &[char] = &['a', 'Z', '0', ' ', '\n', '.', 'é', 'Δ', '@'];
const GSM_ANY: &[char] = &['a', 'Z', '0', ' ', '\n', 'é', 'Δ', '{', '€', '^', '\u{0C}'];
const ARABIC: &[char] = &['ب', 'ا', 'ً', '،', 'ة', '٣'];
const MIXED: &[char] = &['a', ' ', '\n', '{', '€', 'ب', '،', 'ç', '😀'];

proptest! {
    #[test]
    fn segments_grow_with_length_gsm(a in text(GSM_BASIC, 500), b in text(GSM_BASIC, 500)) {
        let (short, long) = if a.chars().count() <= b.chars().count() { (a, b) } else { (b, a) };
        prop_assert_eq!(encoding(&short), Encoding::Gsm7);
        prop_assert!(segments(&short) <= segments(&long));
    }

    #[test]
    fn segments_grow_with_length_ucs2(a in text(ARABIC, 300), b in text(ARABIC, 300)) {
        let (short, long) = if a.chars().count() <= b.chars().count() { (a, b) } else { (b, a) };
        prop_assert!(segments(&short) <= segments(&long));
    }

    #[test]
    fn segments_never_shrink_when_appending(s in prop_oneof![
        text(GSM_ANY, 500),
        text(ARABIC, 300),
        text(MIXED, 300),
    ]) {
        let mut previous = segments("");
        for (i, c) in s.char_indices() {
            let now = segments(&s[..i + c.len_utf8()]);
            prop_assert!(now >= previous, "{:?} -> {} parts after {} parts", &s[..i + c.len_utf8()], now, previous);
            previous = now;
        }
    }

    #[test]
    fn segments_match_plain_division_without_escapes_or_pairs(n in 0usize..1000) {
        let gsm = "a".repeat(n);
        let expected = if n <= 160 { 1 } else { n.div_ceil(153) };
        prop_assert_eq!(segments(&gsm) as usize, expected);
        let ar = "ب".repeat(n);
        let expected = if n <= 70 { 1 } else { n.div_ceil(67) };
        prop_assert_eq!(segments(&ar) as usize, expected);
    }
}
