//! SMS templates (SPEC §4), rendering and GSM-7 / UCS-2 segment counting.

use crate::domain::records::case::Language;

crate::named_enum! {
    pub enum TemplateId {
        Sms1 = "SMS1",
        Sms2 = "SMS2",
        Sms3 = "SMS3",
        Sms4 = "SMS4",
        Sms5 = "SMS5",
        StfLink = "STF_LINK",
        StatusUpdate = "STATUS_UPDATE",
        DiscountOffer = "DISCOUNT_OFFER",
        RescheduleConfirmation = "RESCHEDULE_CONFIRMATION",
    }
}

/// Values substituted into a template; each template names the ones it needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmsVars {
    /// X in SMS3 / SMS4.
    pub remaining_visits: Option<u32>,
    /// STF_LINK: the self-scheduling link.
    pub link: Option<String>,
    /// DISCOUNT_OFFER.
    pub coupon_code: Option<String>,
    /// DISCOUNT_OFFER: "15".
    pub discount: Option<String>,
    /// DISCOUNT_OFFER: "2026-04-01".
    pub valid_until: Option<String>,
    /// RESCHEDULE_CONFIRMATION: local date "2026-04-01".
    pub date: Option<String>,
    /// RESCHEDULE_CONFIRMATION: local time "14:00".
    pub time: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {template} needs {var}")]
pub struct RenderError {
    pub template: TemplateId,
    pub var: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

// The texts are macros rather than consts so that `format!` checks every
// placeholder against the arguments at compile time and substitutes in one
// pass (a link or code containing "{hotline}" is not expanded again).
//
// Seed 004 texts (SMS1–SMS5) are "exact text" (SPEC §4), byte for byte,
// including the uneven punctuation: no final period in SMS1, none after
// "نقدر تفهمكم" in SMS5. Do not "fix" them.

macro_rules! sms1 {
    () => {
        concat!(
            "مرحباً،\n",
            "لقد حاولنا الاتصال بك منذ قليل ولكن لم نتمكن من الوصول إليك\n",
            "نذكركم بدفع باقة التنظيف.\n",
            "يرجى العلم بأننا لن نستطيع تفعيل الباقة حتى يتم الدفع.\n",
            "للمزيد من المعلومات إتصل بنا على {hotline}",
        )
    };
}

macro_rules! sms2 {
    () => {
        concat!(
            "مرحباً،\n",
            "لقد حاولنا الاتصال بك منذ قليل ولكن لم نتمكن من الوصول إليك.\n",
            "يرجى العلم بأننا سوف نقوم بإلغاء باقة التنظيف لعدم الدفع حتى الأن.\n",
            "نقدر تفهمكم.\n",
            "للمزيد من المعلومات إتصل بنا على {hotline}.",
        )
    };
}

/// SMS3 and SMS4 are one text (seed 004) that differs only in the grace
/// period left; sharing it keeps the two from drifting apart.
macro_rules! expired_package {
    ($within:literal) => {
        concat!(
            "مرحباً،\n",
            "لقد حاولنا الاتصال بك منذ قليل ولكن لم نتمكن من الوصول إليك.\n",
            "يرجى العلم بإن مدة باقة التنظيف قد انتهت.\n",
            "لديك {x} زيارات متبقية في الباقة.\n",
            "في حال عدم تحديد مواعيد الزيارات المتبقية ",
            $within,
            " سوف يتم تعطيل الباقة بشكل نهائي.\n",
            "نقدر تفهمكم.\n",
            "للمزيد من المعلومات إتصل بنا على {hotline}.",
        )
    };
}

macro_rules! sms5 {
    () => {
        concat!(
            "مرحباً،\n",
            "لقد حاولنا الاتصال بك بخصوص زيارة اليوم في باقة تنظيف و لكن لم نستطيع الوصول اليكم.\n",
            "يرجى العلم بأن زيارة إليوم لن يمكننا تأجيلها لميعاد أخر.\n",
            "نأسف لاخباركم بأن هذه الزيارة تم احتسابها في الباقة.\n",
            "نقدر تفهمكم\n",
            "للمزيد من المعلومات إتصل بنا على {hotline}.",
        )
    };
}

// The link sits on a line of its own: no trailing punctuation for a phone's
// link detection to swallow, and no bidi reordering around it in Arabic.
macro_rules! stf_link_ar {
    () => {
        concat!(
            "مرحباً،\n",
            "لقد حاولنا الاتصال بك بخصوص تغيير ميعاد زيارتك ولكن لم نتمكن من الوصول إليك.\n",
            "يرجى اختيار ميعاد جديد من الرابط:\n",
            "{link}\n",
            "للمزيد من المعلومات إتصل بنا على {hotline}.",
        )
    };
}

macro_rules! stf_link_en {
    () => {
        concat!(
            "Hello,\n",
            "We could not reach you by phone to reschedule your appointment.\n",
            "Pick a new time here:\n",
            "{link}\n",
            "For more information call us on {hotline}.",
        )
    };
}

// R0.1: sent while the appointment is still unassigned; it must not promise a
// follow-up message the engine never sends.
macro_rules! status_update_ar {
    () => {
        concat!(
            "مرحباً،\n",
            "جاري الآن تحديد الفني المسئول عن زيارتك القادمة.\n",
            "لا تحتاج لأي إجراء من جانبك.\n",
            "للمزيد من المعلومات إتصل بنا على {hotline}.",
        )
    };
}

macro_rules! status_update_en {
    () => {
        concat!(
            "Hello,\n",
            "We are currently assigning a technician to your upcoming appointment.\n",
            "No action is needed from you.\n",
            "For more information call us on {hotline}.",
        )
    };
}

// R2.3: the cancellation may have come from the customer or from ops, so the
// text states the fact without apologising or blaming.
macro_rules! discount_offer_ar {
    () => {
        concat!(
            "مرحباً،\n",
            "تم إلغاء زيارتك.\n",
            "يسعدنا أن نقدم لك خصم {discount}% على حجزك القادم باستخدام الكود {coupon_code}، صالح حتى {valid_until}.\n",
            "للمزيد من المعلومات إتصل بنا على {hotline}.",
        )
    };
}

macro_rules! discount_offer_en {
    () => {
        concat!(
            "Hello,\n",
            "Your appointment has been cancelled.\n",
            "Enjoy {discount}% off your next booking with code {coupon_code}, valid until {valid_until}.\n",
            "For more information call us on {hotline}.",
        )
    };
}

macro_rules! reschedule_confirmation_ar {
    () => {
        concat!(
            "مرحباً،\n",
            "تم تغيير ميعاد زيارتك إلى يوم {date} الساعة {time}.\n",
            "للمزيد من المعلومات إتصل بنا على {hotline}.",
        )
    };
}

macro_rules! reschedule_confirmation_en {
    () => {
        concat!("Hello,\n", "Your appointment has been rescheduled to {date} at {time}.\n", "For more information call us on {hotline}.",)
    };
}

/// Renders a template. Returns the language actually used: SMS1–SMS5 are the
/// company's fixed Arabic texts and go out in Arabic whatever the customer's language.
///
/// A variable that is present but blank counts as missing: an SMS with an
/// empty link or coupon code is worse than no SMS. The same holds for a blank
/// hotline (reported as `var: "hotline"`), which would otherwise end every
/// text with "call us on .".
pub fn render(template: TemplateId, language: Language, vars: &SmsVars, hotline: &str) -> Result<(Language, String), RenderError> {
    let hotline = required(template, "hotline", Some(hotline))?;
    let rendered = match template {
        TemplateId::Sms1 => (Language::Ar, format!(sms1!(), hotline = hotline)),
        TemplateId::Sms2 => (Language::Ar, format!(sms2!(), hotline = hotline)),
        TemplateId::Sms3 | TemplateId::Sms4 => {
            let x = vars.remaining_visits.ok_or(RenderError { template, var: "remaining_visits" })?;
            let body = if template == TemplateId::Sms3 {
                format!(expired_package!("في خلال إسبوعين"), x = x, hotline = hotline)
            } else {
                format!(expired_package!("في خلال إسبوع"), x = x, hotline = hotline)
            };
            (Language::Ar, body)
        }
        TemplateId::Sms5 => (Language::Ar, format!(sms5!(), hotline = hotline)),
        TemplateId::StfLink => {
            let link = required(template, "link", vars.link.as_deref())?;
            let body = match language {
                Language::Ar => format!(stf_link_ar!(), link = link, hotline = hotline),
                Language::En => format!(stf_link_en!(), link = link, hotline = hotline),
            };
            (language, body)
        }
        TemplateId::StatusUpdate => {
            let body = match language {
                Language::Ar => format!(status_update_ar!(), hotline = hotline),
                Language::En => format!(status_update_en!(), hotline = hotline),
            };
            (language, body)
        }
        TemplateId::DiscountOffer => {
            let coupon_code = required(template, "coupon_code", vars.coupon_code.as_deref())?;
            let discount = required(template, "discount", vars.discount.as_deref())?;
            let valid_until = required(template, "valid_until", vars.valid_until.as_deref())?;
            let body = match language {
                Language::Ar => format!(
                    discount_offer_ar!(),
                    discount = discount,
                    coupon_code = coupon_code,
                    valid_until = valid_until,
                    hotline = hotline
                ),
                Language::En => format!(
                    discount_offer_en!(),
                    discount = discount,
                    coupon_code = coupon_code,
                    valid_until = valid_until,
                    hotline = hotline
                ),
            };
            (language, body)
        }
        TemplateId::RescheduleConfirmation => {
            let date = required(template, "date", vars.date.as_deref())?;
            let time = required(template, "time", vars.time.as_deref())?;
            let body = match language {
                Language::Ar => format!(reschedule_confirmation_ar!(), date = date, time = time, hotline = hotline),
                Language::En => format!(reschedule_confirmation_en!(), date = date, time = time, hotline = hotline),
            };
            (language, body)
        }
    };
    Ok(rendered)
}

fn required<'a>(template: TemplateId, var: &'static str, value: Option<&'a str>) -> Result<&'a str, RenderError> {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(RenderError { template, var }),
    }
}

/// GSM-7 if every char is in the GSM 03.38 default alphabet or its basic
/// extension table, UCS-2 otherwise (one char outside is enough to switch the
/// whole message).
pub fn encoding(body: &str) -> Encoding {
    if body.chars().all(|c| gsm_septets(c).is_some()) {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    }
}

/// Number of SMS parts `body` is sent as.
///
/// GSM-7: up to 160 septets in one part, else parts of 153 (the concatenation
/// header takes the rest). UCS-2: 70 UTF-16 code units, else parts of 67.
/// An escape pair (extension char) or a surrogate pair is never split across
/// two parts, so a part may carry one unit less than the maximum; this is why
/// the count is a greedy packing rather than a plain division.
///
/// An empty body counts as 1: it still goes out (and is billed) as one message.
pub fn segments(body: &str) -> u32 {
    match encoding(body) {
        // The fallback is never taken: `encoding` has just checked every char.
        Encoding::Gsm7 => pack(body, |c| gsm_septets(c).unwrap_or(2), 160, 153),
        Encoding::Ucs2 => pack(body, |c| c.len_utf16() as u32, 70, 67),
    }
}

fn pack(body: &str, cost: impl Fn(char) -> u32, single: u32, per_part: u32) -> u32 {
    let total = body.chars().fold(0u32, |sum, c| sum.saturating_add(cost(c)));
    if total <= single {
        return 1;
    }
    let mut parts = 1u32;
    let mut used = 0u32;
    for c in body.chars() {
        let c = cost(c);
        if used + c > per_part {
            parts = parts.saturating_add(1);
            used = 0;
        }
        used += c;
    }
    parts
}

/// Septets `c` takes in GSM-7: 1 in the default alphabet, 2 (escape + char)
/// in the basic extension table, `None` if it cannot be sent in GSM-7.
fn gsm_septets(c: char) -> Option<u32> {
    match c {
        // ESC (0x1B) is a code of the alphabet, not a character a body may carry.
        '\n' | '\r' | ' '..='Z' | '_' | 'a'..='z' => Some(1),
        '£' | '¥' | 'è' | 'é' | 'ù' | 'ì' => Some(1),
        'ò' | 'Ç' | 'Ø' | 'ø' | 'Å' | 'å' => Some(1),
        'Δ' | 'Φ' | 'Γ' | 'Λ' | 'Ω' | 'Π' | 'Ψ' | 'Σ' | 'Θ' | 'Ξ' => Some(1),
        'Æ' | 'æ' | 'ß' | 'É' | '¤' | '¡' | 'Ä' | 'Ö' | 'Ñ' | 'Ü' | '§' => Some(1),
        '¿' | 'ä' | 'ö' | 'ñ' | 'ü' | 'à' => Some(1),
        '\u{0C}' | '^' | '{' | '}' | '\\' | '[' | '~' | ']' | '|' | '€' => Some(2),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
