//! A small RESP2/RESP3 reply reader for the comparisons that are not byte for byte: sorting unordered arrays (KEYS,
//! SCAN) and comparing only the shape of a reply (types and aggregate sizes). Replies reach it already checked by
//! `redis-protocol`, so it only has to be correct on well-formed input; on anything else it says so.

/// One reply: a scalar (type byte and payload) or an aggregate (type byte and elements).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    /// `+`, `-`, `:`, `,`, `#`, `(`, `_`, and bulk/verbatim/blob-error payloads; `None` is a RESP2 null (`$-1`, `*-1`).
    Scalar(u8, Option<Vec<u8>>),
    /// `*`, `%`, `~`, `>`, `|` with their elements (a map's keys and values alternate).
    Aggregate(u8, Vec<Value>),
}

impl Value {
    /// Parses one complete reply.
    pub fn parse(buf: &[u8]) -> Option<Value> {
        let (value, used) = parse_at(buf, 0)?;
        (used == buf.len()).then_some(value)
    }

    /// The same reply with every aggregate's elements sorted (map entries kept as pairs), for replies whose order
    /// is unspecified.
    pub fn sorted(self) -> Value {
        match self {
            Value::Aggregate(kind, items) => {
                let mut items: Vec<Value> = items.into_iter().map(Value::sorted).collect();
                if kind == b'%' || kind == b'|' {
                    let mut pairs: Vec<Vec<Value>> =
                        items.chunks(2).map(|pair| pair.to_vec()).collect();
                    pairs.sort();
                    items = pairs.into_iter().flatten().collect();
                } else {
                    items.sort();
                }
                Value::Aggregate(kind, items)
            }
            scalar => scalar,
        }
    }

    /// The reply's shape: the types and aggregate sizes, with every scalar's content dropped (nulls stay nulls).
    pub fn shape(self) -> Value {
        match self {
            Value::Aggregate(kind, items) => {
                Value::Aggregate(kind, items.into_iter().map(Value::shape).collect())
            }
            Value::Scalar(kind, payload) => Value::Scalar(kind, payload.map(|_| Vec::new())),
        }
    }
}

fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(at..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..end], at + end + 2))
}

fn parse_at(buf: &[u8], at: usize) -> Option<(Value, usize)> {
    let kind = *buf.get(at)?;
    let (head, next) = line(buf, at + 1)?;
    let number = || std::str::from_utf8(head).ok()?.parse::<i64>().ok();
    match kind {
        b'$' | b'=' | b'!' => {
            let len = number()?;
            if len < 0 {
                return Some((Value::Scalar(kind, None), next));
            }
            let end = next + len as usize;
            let payload = buf.get(next..end)?.to_vec();
            (buf.get(end..end + 2)? == b"\r\n")
                .then_some((Value::Scalar(kind, Some(payload)), end + 2))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let count = number()?;
            if count < 0 {
                return Some((Value::Scalar(kind, None), next));
            }
            let count = if kind == b'%' || kind == b'|' {
                count * 2
            } else {
                count
            };
            let mut items = Vec::new();
            let mut pos = next;
            for _ in 0..count {
                let (item, after) = parse_at(buf, pos)?;
                items.push(item);
                pos = after;
            }
            Some((Value::Aggregate(kind, items), pos))
        }
        _ => Some((Value::Scalar(kind, Some(head.to_vec())), next)),
    }
}

#[test]
fn values_sort_recursively_and_keep_map_pairs() {
    let scan = Value::parse(b"*2\r\n$1\r\n0\r\n*3\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\na\r\n").unwrap();
    let want = Value::parse(b"*2\r\n$1\r\n0\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n").unwrap();
    assert_eq!(scan.sorted(), want);
    let map = Value::parse(b"%2\r\n+z\r\n:1\r\n+a\r\n:2\r\n")
        .unwrap()
        .sorted();
    assert_eq!(
        map,
        Value::parse(b"%2\r\n+a\r\n:2\r\n+z\r\n:1\r\n").unwrap()
    );
    let shape = Value::parse(b"*2\r\n$3\r\nabc\r\n$-1\r\n").unwrap().shape();
    assert_eq!(
        shape,
        Value::parse(b"*2\r\n$0\r\n\r\n$-1\r\n").unwrap().shape()
    );
    assert_ne!(
        shape,
        Value::parse(b"*2\r\n$0\r\n\r\n$0\r\n\r\n").unwrap().shape()
    );
}
