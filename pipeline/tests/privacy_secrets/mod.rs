//! Planted secrets for the privacy suite: a seeded generator of realistic sensitive values
//! in many classes, each with the distinctive substrings a leak would show.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One planted value.
#[derive(Debug, Clone)]
pub struct Secret {
    /// Its class (`email_token`, `aws_key`, ...).
    pub class: &'static str,
    /// The value as planted.
    pub text: String,
    /// Its variable parts (what would identify a person or open an account); the scan
    /// looks for each and for its distinctive windows.
    pub parts: Vec<String>,
}

impl Secret {
    /// The strings whose presence anywhere means a leak: each variable part, and every
    /// window of it that is distinctive: 6 characters when the part holds at least three
    /// letters, else 12 (numbers and addresses: shorter digit runs occur by chance in
    /// counts, timestamps, sketch registers and keyed hashes, which are random).
    pub fn needles(&self) -> Vec<String> {
        let mut out = Vec::new();
        for part in &self.parts {
            let chars: Vec<char> = part.chars().collect();
            let letters = chars.iter().filter(|c| c.is_alphabetic()).count();
            let len = if letters >= 3 { 6 } else { 12 };
            if chars.len() < len {
                if chars.len() >= 6 {
                    out.push(part.clone());
                }
                continue;
            }
            for w in chars.windows(len) {
                let s: String = w.iter().copied().collect();
                // Windows that are mostly separators or one repeated character are not
                // distinctive.
                let distinct: std::collections::BTreeSet<char> = w.iter().copied().collect();
                if distinct.len() >= 4 {
                    out.push(s);
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// Syllables that make distinctive, pronounceable words (no 6-letter English run comes
/// out of three of them).
const SYLLABLES: &[&str] = &[
    "zor", "vak", "qui", "xel", "mub", "tez", "kyo", "jav", "rix", "ulv", "pez", "wob", "fyn",
    "zaq", "dru", "gox", "hij", "nyx", "yve", "cuz", "bez", "lox", "kaj", "vyr",
];

/// Seeded generator.
pub struct Gen {
    rng: StdRng,
}

impl Gen {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Gen {
        Gen {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// A word of `n` syllables.
    pub fn word(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| SYLLABLES[self.rng.random_range(0..SYLLABLES.len())])
            .collect()
    }

    /// A capitalised word (names).
    pub fn name(&mut self) -> String {
        let w = self.word(3);
        let mut c = w.chars();
        match c.next() {
            Some(f) => f.to_uppercase().chain(c).collect(),
            None => w,
        }
    }

    fn chars(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[self.rng.random_range(0..alphabet.len())] as char)
            .collect()
    }

    fn alnum(&mut self, n: usize) -> String {
        self.chars(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            n,
        )
    }

    fn digits(&mut self, n: usize) -> String {
        self.chars(b"0123456789", n)
    }

    fn b64url(&mut self, n: usize) -> String {
        self.chars(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
            n,
        )
    }

    /// `first.last` @ a made-up company domain.
    pub fn email(&mut self) -> (String, Vec<String>) {
        let user = format!("{}.{}", self.word(2), self.word(2));
        let domain = format!("{}-{}", self.word(2), self.word(1));
        let tld = ["com", "io", "de", "co.uk"][self.rng.random_range(0..4)];
        (
            format!("{user}@{domain}.{tld}"),
            vec![user.clone(), domain.clone()],
        )
    }

    /// A Luhn-valid 16-digit card number.
    pub fn card(&mut self) -> String {
        let mut d: Vec<u32> = vec![4];
        for _ in 0..14 {
            d.push(self.rng.random_range(0..10));
        }
        let sum: u32 = d
            .iter()
            .rev()
            .enumerate()
            .map(|(i, &x)| {
                if i % 2 == 0 {
                    let y = x * 2;
                    if y > 9 {
                        y - 9
                    } else {
                        y
                    }
                } else {
                    x
                }
            })
            .sum();
        d.push((10 - sum % 10) % 10);
        d.iter()
            .map(|x| char::from_digit(*x, 10).unwrap())
            .collect()
    }

    /// A German-format IBAN with a valid check number.
    pub fn iban(&mut self) -> String {
        let bban = self.digits(18);
        // ISO 13616: move the country and "00" to the end (D=13, E=14), mod 97.
        let numeric = format!("{bban}131400");
        let rem = numeric
            .bytes()
            .fold(0u64, |acc, b| (acc * 10 + u64::from(b - b'0')) % 97);
        format!("DE{:02}{bban}", 98 - rem)
    }

    fn jwt(&mut self) -> String {
        format!(
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ{}.{}",
            self.b64url(40),
            self.b64url(43)
        )
    }

    /// Every class, `per_class` secrets each, no two sharing a distinctive substring (so a
    /// hit names the one secret that leaked).
    pub fn secrets(&mut self, per_class: usize) -> Vec<Secret> {
        let mut out: Vec<Secret> = Vec::new();
        let mut used = std::collections::HashSet::new();
        let mut count: std::collections::BTreeMap<&str, usize> = Default::default();
        for _ in 0..1000 {
            for s in self.one_of_each() {
                let n: Vec<String> = s.needles().iter().map(|n| n.to_lowercase()).collect();
                let c = count.entry(s.class).or_default();
                if *c < per_class && !n.is_empty() && n.iter().all(|x| !used.contains(x)) {
                    *c += 1;
                    used.extend(n);
                    out.push(s);
                }
            }
            if count.values().all(|&c| c == per_class) {
                break;
            }
        }
        assert!(count.values().all(|&c| c == per_class), "{count:?}");
        out
    }

    /// One secret of every class.
    fn one_of_each(&mut self) -> Vec<Secret> {
        let mut out = Vec::new();
        {
            let mut push =
                |class, text: String, parts: Vec<String>| out.push(Secret { class, text, parts });
            let (e, p) = self.email();
            push("email_token", format!("email:{e}"), p);
            let (e, p) = self.email();
            push("email_json", e, p);
            let (e, p) = self.email();
            push("email_mailto", e, p);
            let (e, p) = self.email();
            push("email_url_path", e, p);
            let (first, last) = (self.name(), self.name());
            let illness = self.name();
            push(
                "person_name_diagnosis",
                format!("{first} {last} diagnosed with {illness} syndrome"),
                vec![first, last, illness],
            );
            let phrase = format!(
                "{}{}{}{}",
                self.word(2),
                self.word(2),
                self.word(2),
                self.word(2)
            );
            push("passphrase", phrase.clone(), vec![phrase]);
            let (who, pw) = (format!("{} {}", self.name(), self.name()), self.alnum(12));
            push(
                "sql_literal",
                format!("{who}' AND pw = '{pw}"),
                vec![who, pw],
            );
            let id = format!(
                "AKIA{}",
                self.chars(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
            );
            push("aws_access_key_id", id.clone(), vec![id[4..].to_string()]);
            let secret = self.chars(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                40,
            );
            push("aws_secret_key", secret.clone(), vec![secret]);
            let user = self.word(2);
            push("auth_user", user.clone(), vec![user]);
            let v4 = format!(
                "{}.{}.{}.{}",
                self.rng.random_range(11..=223),
                self.rng.random_range(100..=254),
                self.rng.random_range(100..=254),
                self.rng.random_range(100..=254)
            );
            push("ipv4", v4.clone(), vec![v4]);
            let v6 = format!(
                "2001:db8:{:x}:{:x}::{:x}",
                self.rng.random_range(0x1000..0xffffu32),
                self.rng.random_range(0x1000..0xffffu32),
                self.rng.random_range(0x1000..0xffffu32)
            );
            push(
                "ipv6",
                v6.clone(),
                vec![v6["2001:db8:".len()..].to_string()],
            );
            let (a, b, c) = (self.digits(3), self.digits(3), self.digits(4));
            push(
                "phone",
                format!("+1-{a}-{b}-{c}"),
                vec![format!("{a}-{b}-{c}"), format!("{a}{b}{c}")],
            );
            let iban = self.iban();
            let spaced: String = iban
                .as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join(" ");
            push(
                "iban",
                spaced.clone(),
                vec![iban[4..].to_string(), spaced[5..].to_string()],
            );
            let stripe = self.alnum(24);
            push("stripe_key", format!("sk_live_{stripe}"), vec![stripe]);
            let gh = self.alnum(36);
            push("github_token", format!("ghp_{gh}"), vec![gh]);
            let slack = (self.digits(12), self.digits(13), self.alnum(24));
            push(
                "slack_token",
                format!("xoxb-{}-{}-{}", slack.0, slack.1, slack.2),
                vec![slack.2.clone(), format!("{}-{}", slack.0, slack.1)],
            );
            let google = self.b64url(35);
            push("google_api_key", format!("AIza{google}"), vec![google]);
            let pem_body = self.chars(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                64,
            );
            push(
                "pem_private_key",
                format!(
                    "-----BEGIN RSA PRIVATE KEY-----\nMIIEow{pem_body}\n-----END RSA PRIVATE KEY-----"
                ),
                vec![pem_body],
            );
            let jwt = self.jwt();
            let jparts: Vec<String> = jwt.split('.').skip(1).map(str::to_string).collect();
            push("jwt", jwt, jparts);
            let card = self.card();
            let grouped = format!(
                "{} {} {} {}",
                &card[..4],
                &card[4..8],
                &card[8..12],
                &card[12..]
            );
            push(
                "card_number",
                grouped,
                vec![card.clone(), card[4..].to_string()],
            );
            let key_secret = format!("tok_{}", self.alnum(20));
            push(
                "secret_in_attribute_key",
                key_secret.clone(),
                vec![key_secret[4..].to_string()],
            );
            let (e, p) = self.email();
            push("secret_in_metric_name_unit", e, p);
            let (e, p) = self.email();
            push("secret_in_span_name", e, p);
            let name = self.name();
            push("secret_in_severity_text", format!("info{name}"), vec![name]);
            let value = format!(
                "{}.{}",
                self.rng.random_range(10_000..99_999),
                self.digits(5)
            );
            push("metric_value", value.clone(), vec![value]);
        }
        out
    }
}
