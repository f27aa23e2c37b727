//! Unit tests of masking.
use super::cache::{CACHED_LINE_OUT, CACHED_LINE_TOKENS, LINE_SLOTS};
use super::*;

fn mask(line: &str) -> String {
    let mut out = MaskedLine::new();
    Masker::new().mask_into(line, &mut out);
    out.joined()
}

#[test]
fn numbers_and_hex() {
    assert_eq!(mask("took 15 ms"), "took <*> ms");
    assert_eq!(mask("took 15 days"), "took <*>");
    assert_eq!(mask("value -3.25e10 rounded"), "value <*> rounded");
    assert_eq!(mask("addr 0x7fff5a3b flags=0x1,"), "addr <*> flags=<*>,");
    assert_eq!(mask("commit deadbeefcafe01"), "commit <*>");
    assert_eq!(mask("commit deadbeefcafe"), "commit <*>");
    assert_eq!(mask("a decade ago"), "a decade ago");
}

#[test]
fn uuids_and_ids() {
    assert_eq!(
        mask("[instance: 3edec1e4-9678-4a3a-a21b-a145a4ee5e61] Terminating"),
        "[instance: <*>] Terminating"
    );
    assert_eq!(
        mask("block blk_-6952295868487656571 terminating"),
        "block <*> terminating"
    );
    assert_eq!(mask("req-38101a0b-2096-447d"), "<*>");
}

#[test]
fn ip_addresses_with_ports() {
    assert_eq!(mask("from 10.0.0.1:8080 ok"), "from <*> ok");
    assert_eq!(mask("rhost=218.188.2.4"), "rhost=<*>");
    assert_eq!(mask("net 192.168.0.0/16."), "net <*>.");
    assert_eq!(mask("peer fe80::1ff:fe23:4567:890a"), "peer <*>");
    assert_eq!(mask("peer [2001:db8::1]:443,"), "peer <*>,");
    assert_eq!(mask("peer ::1"), "peer <*>");
    assert_eq!(mask("mac aa:bb:cc:dd:ee:ff"), "mac <*>");
    assert_eq!(mask("(::ffff:10.1.2.3)"), "(<*>)");
}

#[test]
fn emails() {
    assert_eq!(mask("sent to alice.smith@example.com."), "sent to <*>.");
    assert_eq!(mask("<bob+x@mail.example.org>"), "<<*>>");
    assert_eq!(mask("user=carol@corp.io"), "user=<*>");
}

#[test]
fn urls_keep_shape_but_not_values() {
    assert_eq!(
        mask("GET https://api.example.com/v2/users/123/orders?id=77&name=bob#frag done"),
        "GET https://<*>/<*>/users/<*>/orders?id=<*>&name=<*>#<*> done"
    );
    assert_eq!(
        mask("http://admin:hunter2@10.0.0.5:8080/x"),
        "http://<*>@<*>/x"
    );
}

#[test]
fn jwts() {
    assert_eq!(
        mask("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhYmMifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"),
        "jwt <*>"
    );
}

#[test]
fn secrets_after_keys() {
    assert_eq!(mask("login password=hunter two"), "login password=<*> two");
    assert_eq!(mask("api_key=abcdefXYZ,"), "api_key=<*>,");
    assert_eq!(mask("x-auth-token: sekrit rest"), "x-auth-token: <*> rest");
    assert_eq!(
        mask("Authorization: Bearer abc.def.ghi"),
        "Authorization: Bearer <*>"
    );
    assert_eq!(mask("password= topsecret"), "password= <*>");
    assert_eq!(mask("Failed password for root"), "Failed password for root");
    assert_eq!(
        mask(r#"{"password": "letters", "user": "x"}"#),
        r#"{"password": "<*>", "user": "<*>"}"#
    );
    assert_eq!(mask("tag=\"View Lock\""), "tag=\"<*>\"");
}

#[test]
fn paths_times_and_card_numbers() {
    assert_eq!(
        mask("open /var/log/app-2024/part-00017.log failed"),
        "open /var/log/<*>/<*> failed"
    );
    assert_eq!(mask("at 12:30:45.123"), "at <*>");
    assert_eq!(mask("from 10.0.0.1,10.0.0.2:80 ok"), "from <*> ok");
    assert_eq!(mask("card 4111-1111-1111-1111"), "card <*>");
    assert_eq!(mask("card 4111 1111 1111 1111"), "card <*>");
}

#[test]
fn whitespace_is_normalised_and_hashes_match_text() {
    let mut out = MaskedLine::new();
    Masker::new().mask_into("  a\t b  42 ", &mut out);
    assert_eq!(out.joined(), "a b <*>");
    let t = out.tokens();
    assert!(t[2].is_wildcard());
    assert_eq!(t[0].hash, token_hash("a"));
    assert_ne!(t[0].hash, t[1].hash);
}

#[test]
fn host_names_and_host_port() {
    assert_eq!(mask("proxy.example.com:443 -> db-7:5432"), "<*> -> <*>");
    assert_eq!(mask("db-primary:5432"), "db-primary:<*>");
    assert_eq!(mask("localhost:8080 up"), "<*> up");
    assert_eq!(
        mask("rhost=biblioteka.wsi.edu.pl user=root"),
        "rhost=<*> user=root"
    );
    assert_eq!(mask("resolved zummit.com"), "resolved <*>");
    // One dot and no top-level domain: an identifier, not a host.
    assert_eq!(mask("n.getKey = x"), "n.getKey = x");
    assert_eq!(mask("class org.apache.spark.Executor"), "class <*>");
}

#[test]
fn sizes_durations_and_dates() {
    assert_eq!(
        mask("sent 1234 bytes (1.2 KB) in <1 sec"),
        "sent <*> bytes (<*> <*>) in <<*> <*>"
    );
    assert_eq!(mask("sent 99 bytes (3 MB)"), "sent <*> bytes (<*> <*>)");
    assert_eq!(mask("elapsed 00:01 and 1h2m"), "elapsed <*> and <*>");
    assert_eq!(mask("took 2 mins"), mask("took 5 hours"));
    assert_eq!(mask("at Fri Jun 17 07:07:00 2005"), "at <*>");
}

#[test]
fn quoted_strings_are_one_value() {
    assert_eq!(mask("tag=\"View Lock\", ok"), "tag=\"<*>\", ok");
    assert_eq!(
        mask("WHERE name = 'Jane Doe' AND pw = 'x y z' LIMIT 5"),
        "WHERE name = '<*>' AND pw = '<*>' LIMIT <*>"
    );
    assert_eq!(mask("service 'sparkDriver' on"), "service '<*>' on");
    // An HTTP request line is structure, not a quoted value.
    assert_eq!(mask("\"GET /v2/x HTTP/1.1\""), "\"GET /<*>/x HTTP/<*>\"");
    // An apostrophe in a word opens nothing.
    assert_eq!(mask("can't open"), "can't open");
}

#[test]
fn emails_in_every_form() {
    assert_eq!(mask("email:alice@corp.com"), "email:<*>");
    assert_eq!(mask("mailto:a.b@x.org,to:c@y.io"), "mailto:<*>,to:<*>");
    assert_eq!(
        mask(r#"{"event":"signup","email":"bob@corp.com"}"#),
        r#"{"event":"<*>","email":"<*>"}"#
    );
    assert_eq!(
        mask("https://shop.example.com/users/alice@corp.com/cards"),
        "https://<*>/users/<*>/cards"
    );
}

#[test]
fn credentials_and_keys() {
    assert_eq!(mask("id AKIAIOSFODNN7EXAMPLE"), "id <*>");
    assert_eq!(
        mask("secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        "secret <*>"
    );
    assert_eq!(mask("sk_live_abcdefghijklmnop"), "<*>");
    assert_eq!(mask("ghp_abcdefghijklmnopqrstuvwxyzABCD"), "<*>");
    assert_eq!(mask("xoxb-abcdefgh-ijklmnop"), "<*>");
    assert_eq!(mask("AIzaSyDabcdefghijklmnop"), "<*>");
    // DigitalOcean tokens of any version digit (no rule looks at a digit's value).
    assert_eq!(mask("dop_v1_abcdefghijklmnop"), "<*>");
    assert_eq!(mask("dop_v2_abcdefghijklmnop"), "<*>");
    assert_eq!(mask("dop_vx_abcdefghijklmnop"), "dop_vx_abcdefghijklmnop");
    assert_eq!(
        mask(r#"{"api_secret":"abc","token":lettersonly}"#),
        r#"{"api_secret":"<*>","token":<*>}"#
    );
    assert_eq!(
        mask("-----BEGIN RSA PRIVATE KEY----- MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOE"),
        "-----BEGIN RSA PRIVATE KEY----- <*>"
    );
}

#[test]
fn phones_ibans_and_bracketed_ids() {
    assert_eq!(mask("call +1 (555) 010-7788"), "call <*> (<*>) <*>");
    assert_eq!(mask("iban DE89370400440532013000"), "iban <*>");
    assert_eq!(mask("GB82 WEST 1234"), "<*> WEST <*>");
    assert_eq!(
        mask("[worker-7] [req:ab12cd] [main]"),
        "[<*>] [req:<*>] [main]"
    );
}

#[test]
fn blobs_are_one_variable() {
    let blob = "g".repeat(MAX_TOKEN_BYTES + 1);
    assert_eq!(mask(&format!("payload {blob} end")), "payload <*> end");
    let fits = "g".repeat(MAX_TOKEN_BYTES);
    assert_eq!(mask(&format!("payload {fits}")), format!("payload {fits}"));
}

#[test]
fn lists_of_values_are_one_token() {
    // Comma-separated and space-separated lists of any length make the same token.
    assert_eq!(
        mask("deleting 10.0.0.1, 10.0.0.2, 10.0.0.3 now"),
        "deleting <*> now"
    );
    assert_eq!(mask("deleting 10.0.0.1 now"), "deleting <*> now");
    assert_eq!(
        mask("ask 10.1.2.3:50010 to delete blk_-1 blk_-2 blk_-3"),
        mask("ask 10.1.2.3:50010 to delete blk_-9")
    );
    assert_eq!(mask("ids [1, 2, 3] done"), "ids [<*>] done");
    // Words between values keep them apart.
    assert_eq!(mask("from 1 to 2"), "from <*> to <*>");
}

#[test]
fn cached_tokens_mask_as_fresh_ones() {
    let m = Masker::new();
    let lines = [
        "pam_unix(sshd:auth): authentication failure; user=root rhost=host.example.com",
        "password: hunter two token= abc Bearer xyz",
        "ready=true,policy=3,wakefulness=1,mode=false,manual=38 user=root",
        "(sshd:auth) dead:beef:cafe org.apache.Foo: after 3 KB kb",
    ];
    let mut reused = MaskedLine::new();
    for round in 0..3 {
        for l in lines {
            let mut fresh = MaskedLine::new();
            m.mask_into(l, &mut fresh);
            m.mask_into(l, &mut reused);
            assert_eq!(reused.joined(), fresh.joined(), "round {round}: {l}");
            assert_eq!(reused.tokens(), fresh.tokens(), "round {round}: {l}");
        }
    }
}

#[test]
fn key_value_chains_mask_every_value() {
    let mut out = MaskedLine::new();
    let m = Masker::new();
    let chain: String = (0..100).map(|i| format!("k{i}=v{i},")).collect();
    m.mask_into(&format!("state {chain} end"), &mut out);
    let j = out.joined();
    assert!(!j.bytes().any(|b| b.is_ascii_digit()), "{j}");
    assert!(j.starts_with("state "), "{j}");
}

#[test]
fn cached_lines_mask_as_fresh_ones() {
    // Repeated lines come from the line cache: the output must be what the rules give.
    // Many distinct lines (slot collisions), both masker settings sharing one buffer, lines
    // at and past the length bound, and lines whose masked text is past its bound.
    let with_lists = Masker::new();
    let without = Masker::default();
    let mut lines: Vec<String> = Vec::new();
    for i in 0..3000u32 {
        lines.push(match i % 6 {
            0 => format!(
                "user{} logged in from 10.0.{}.{}:22 a,b,c",
                i % 7,
                i % 5,
                i % 3
            ),
            1 => format!(
                "GET /api/v{}/items?id={} 200 {} bytes",
                i % 3,
                i % 11,
                i % 13
            ),
            2 => "x".repeat(250 + (i % 10) as usize),
            3 => "1 ".repeat(128 + (i % 3) as usize),
            4 => format!("password: s{} token= abc Bearer xyz{}", i % 4, i % 9),
            _ => format!("ready=true,policy={},mode=false, {} items", i % 2, i % 17),
        });
    }
    let mut reused = MaskedLine::new();
    for (n, l) in lines.iter().chain(lines.iter().rev()).enumerate() {
        let m = if n % 5 == 0 { &without } else { &with_lists };
        let mut fresh = MaskedLine::new();
        m.mask_uncached(l, &mut fresh);
        m.mask_into(l, &mut reused);
        assert_eq!(reused.joined(), fresh.joined(), "line {n}: {l}");
        assert_eq!(reused.tokens(), fresh.tokens(), "line {n}: {l}");
    }
    // The cache did serve repeats and stays within its bounds.
    let held = reused.lines.entries.iter().filter(|e| !e.raw.is_empty());
    let mut count = 0;
    for e in held {
        count += 1;
        assert!(e.raw.len() <= CACHED_LINE && e.buf.len() <= CACHED_LINE_OUT);
        assert!(e.tokens.len() <= CACHED_LINE_TOKENS);
    }
    assert!(count > 0 && count <= LINE_SLOTS, "{count}");
}
