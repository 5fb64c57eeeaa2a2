//! The realistic event mix shared by `benches/transform.rs` and `examples/transform_callgrind.rs`
//! (identify, track, page, screen, Order Completed, alias; a typical web `context`).

/// A typical web SDK `context`.
const CONTEXT: &str = r#"{"library":{"name":"RudderLabs JavaScript SDK","version":"3.0.3"},"locale":"en-GB","ip":"203.0.113.7","userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36","page":{"path":"/pricing","referrer":"https://www.google.com/","title":"Pricing","url":"https://shop.example.com/pricing"},"campaign":{"source":"newsletter","medium":"email"}}"#;

fn envelope(kind: &str, i: usize, body: &str) -> String {
    format!(
        r#"{{"type":"{kind}","messageId":"m-{kind}-{i:06}","anonymousId":"a-7f3c9e2b-{i:06}","userId":"u-{i:06}","channel":"web","originalTimestamp":"2024-03-05T10:20:30.123Z","sentAt":"2024-03-05T10:20:30.456Z","context":{CONTEXT},{body},"integrations":{{"All":true}}}}"#
    )
}

pub fn mix(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i % 6 {
            0 => envelope("identify", i, r#""traits":{"email":"ana@example.com","name":"Ana Lima","phone":"+5511999990000","gender":"female","birthday":"1990-04-01","plan":"pro","seats":12,"address":{"city":"Pune","zip":"411001"},"MSG-email":true}"#),
            1 => envelope("track", i, r#""event":"Plan Upgraded","properties":{"from":"basic","to":"pro","price":19.99,"annual":false,"coupon":null,"tags":["a","b"]}"#),
            2 => envelope("page", i, r#""name":"Pricing","properties":{"path":"/pricing","title":"Pricing - Example","referrer":"https://www.google.com/","url":"https://shop.example.com/pricing"}"#),
            3 => envelope("screen", i, r#""name":"Checkout","properties":{"step":2,"cart_value":42.5}"#),
            4 => envelope("track", i, r#""event":"Order Completed","properties":{"checkout_id":"chk-77","order_id":"ord-77","revenue":42.5,"currency":"EUR","coupon":"SPRING","products":[{"product_id":"p1","name":"Kettle","price":30,"quantity":1},{"product_id":"p2","name":"Mug","price":6.25,"quantity":2},{"product_id":"p3","name":"Tea","price":4.5,"quantity":3}]}"#),
            _ => envelope("alias", i, r#""previousId":"a-old-000001""#),
        })
        .collect()
}
