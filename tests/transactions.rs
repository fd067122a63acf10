//! MULTI/EXEC/WATCH through the real binary: transactions are atomic across shards, and WATCH gives the optimistic
//! check-and-set that queue and lock libraries build on.

mod common;

use common::{Raw, Server};

fn int(reply: Vec<u8>) -> i64 {
    String::from_utf8(reply)
        .unwrap()
        .trim_start_matches([':', '$'])
        .lines()
        .last()
        .unwrap()
        .parse()
        .unwrap()
}

/// Transfers between accounts on different shards run as transactions while a reader checks, with one MGET, that
/// the total never changes: nobody sees half a transaction.
#[test]
fn exec_is_atomic_across_shards() {
    let server = Server::start(&["--shards", "16"]);
    let accounts: Vec<String> = (0..8).map(|i| format!("account:{i}")).collect();
    let mut setup = server.raw();
    for a in &accounts {
        setup.cmd(&["SET", a, "1000"]);
    }
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let addr = server.addr();
            let accounts = accounts.clone();
            std::thread::spawn(move || {
                let mut c = Raw::connect(&addr);
                for i in 0..300usize {
                    let from = &accounts[(i * 3 + w) % accounts.len()];
                    let to = &accounts[(i * 5 + w + 1) % accounts.len()];
                    c.line("MULTI");
                    c.cmd(&["DECRBY", from, "7"]);
                    c.cmd(&["INCRBY", to, "7"]);
                    let exec = c.line("EXEC");
                    assert!(exec.starts_with("*2\r\n"), "{exec}");
                }
            })
        })
        .collect();
    let mut reader = server.raw();
    let mut mget = vec!["MGET"];
    mget.extend(accounts.iter().map(String::as_str));
    for _ in 0..500 {
        let reply = String::from_utf8(reader.cmd(&mget)).unwrap();
        let total: i64 = reply
            .lines()
            .skip(2)
            .step_by(2)
            .map(|v| v.parse::<i64>().unwrap())
            .sum();
        assert_eq!(total, 8000, "a reader saw half a transaction");
    }
    for w in writers {
        w.join().unwrap();
    }
}

/// The classic WATCH/GET/MULTI/SET/EXEC retry loop: under contention no increment is lost and none is doubled.
#[test]
fn watch_check_and_set_loses_no_update() {
    let server = Server::start(&[]);
    let per_client = 100;
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let addr = server.addr();
            std::thread::spawn(move || {
                let mut c = Raw::connect(&addr);
                let mut aborted = 0;
                for _ in 0..per_client {
                    loop {
                        c.line("WATCH counter");
                        let current = match c.line("GET counter").as_str() {
                            "$-1\r\n" => 0,
                            v => v.lines().nth(1).unwrap().parse::<i64>().unwrap(),
                        };
                        c.line("MULTI");
                        c.cmd(&["SET", "counter", &(current + 1).to_string()]);
                        if c.line("EXEC") != "*-1\r\n" {
                            break;
                        }
                        aborted += 1;
                    }
                }
                aborted
            })
        })
        .collect();
    let aborted: i32 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    let mut c = server.raw();
    assert_eq!(int(c.cmd(&["GET", "counter"])), 6 * per_client);
    // Not a requirement, but with six writers some transactions must have been refused, or WATCH did nothing.
    assert!(aborted > 0, "no transaction was ever aborted by WATCH");
}

#[test]
fn watch_is_spoiled_by_expiry_of_the_watched_key() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    c.line("SET k v PX 30");
    c.line("WATCH k");
    std::thread::sleep(std::time::Duration::from_millis(60));
    c.line("MULTI");
    c.line("SET k new");
    assert_eq!(c.line("EXEC"), "*-1\r\n");
}

#[test]
fn exec_replies_use_the_client_protocol() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    c.line("HELLO 3");
    c.line("MULTI");
    c.line("GET missing");
    c.line("SET k v");
    assert_eq!(c.line("EXEC"), "*2\r\n_\r\n+OK\r\n");
}
