//! The binary starts, answers over RESP and inline commands, and stays up after bad input.

mod common;

use common::Server;

#[test]
fn answers_ping_set_get_over_multibulk_and_inline() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    assert_eq!(c.line("PING"), "+PONG\r\n");
    assert_eq!(c.line("SET greeting hello"), "+OK\r\n");
    c.send(b"GET greeting\r\n");
    assert_eq!(c.reply(), b"$5\r\nhello\r\n");
}

#[tokio::test]
async fn redis_crate_client_round_trips() {
    let server = Server::start(&[]);
    let mut con = server.client().await;
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut con)
        .await
        .unwrap();
    let v: String = redis::cmd("GET")
        .arg("k")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(v, "v");
}
