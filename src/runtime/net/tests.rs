//! The client port's outgoing path against a real server on a real socket: replies that do
//! not fit in the socket go out later, complete and in order.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::core::ids::ServerId;
use crate::runtime::config::ServerConfig;
use crate::runtime::disk::MemDisk;
use crate::runtime::{start_with, Seams};
use crate::wire;
use crate::wire::frame::FrameDecoder;
use crate::wire::proto::{ConnectRequest, CreateKind, CreateRequest, Request};
use crate::wire::types::Acl;

/// Bounds every socket operation of the test, so a lost reply fails instead of hanging.
const STEP: Duration = Duration::from_secs(20);

struct Client {
    stream: TcpStream,
    inbound: BytesMut,
    decoder: FrameDecoder,
}

impl Client {
    async fn connect(addr: std::net::SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut client =
            Client { stream, inbound: BytesMut::new(), decoder: FrameDecoder::new(4 << 20) };
        let request = ConnectRequest::new_session(30_000);
        client.stream.write_all(&wire::encode_connect_request(&request)).await.expect("send");
        let frame = client.frame().await;
        let response = wire::decode_connect_response(&frame).expect("a connect response");
        assert_ne!(response.session_id, 0, "session granted");
        client
    }

    async fn frame(&mut self) -> Bytes {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.inbound).expect("valid frames") {
                return frame;
            }
            let read = tokio::time::timeout(STEP, self.stream.read_buf(&mut self.inbound))
                .await
                .expect("the server answers in time")
                .expect("read");
            assert_ne!(read, 0, "the server closed the connection");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_larger_than_the_socket_buffer_arrive_whole_and_in_order() {
    let text = "tickTime=2000\ndataDir=/mem/net-test\nclientPort=0\nclientPortAddress=127.0.0.1\n";
    let config = ServerConfig::parse(text).expect("a valid config");
    let server =
        start_with(config, ServerId(0), Seams::new(MemDisk::new())).await.expect("server starts");
    let mut client = Client::connect(server.client_addr).await;

    let data = Bytes::from((0..512 * 1024).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let create = Request::Create(
        CreateKind::Create,
        CreateRequest {
            path: "/big".into(),
            data: Some(data.clone()),
            acl: Acl::open_unsafe(),
            flags: 0,
            ttl: None,
        },
    );
    client.stream.write_all(&wire::encode_request(1, &create)).await.expect("send");
    let (header, _) = wire::decode_reply_header(&client.frame().await).expect("a reply");
    assert_eq!((header.xid, header.err), (1, 0));

    // 48 replies of 512 KiB (24 MiB) requested without reading any: the server's writes
    // fill the socket long before the last reply, so its writer task has to finish the job.
    // (Within the default reply budget of 32 MiB; past it the client would be dropped.)
    const READS: i32 = 48;
    let mut requests = BytesMut::new();
    for xid in 2..2 + READS {
        let get = Request::GetData { path: "/big".into(), watch: false };
        requests.extend_from_slice(&wire::encode_request(xid, &get));
    }
    client.stream.write_all(&requests).await.expect("send");
    tokio::time::sleep(Duration::from_millis(300)).await;

    for xid in 2..2 + READS {
        let (header, body) = wire::decode_reply_header(&client.frame().await).expect("a reply");
        assert_eq!((header.xid, header.err), (xid, 0), "replies in request order");
        // GetDataResponse: the data as a length-prefixed buffer, then the stat.
        let len = i32::from_be_bytes(body[..4].try_into().expect("4 bytes")) as usize;
        assert_eq!(&body[4..4 + len], &data[..], "reply {xid} intact");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_past_its_reply_budget_is_dropped_and_the_server_forgets_it() {
    let text = "tickTime=2000\ndataDir=/mem/net-test\nclientPort=0\nclientPortAddress=127.0.0.1\n\
                ensemble.connReplyBudgetBytes=1048576\n";
    let config = ServerConfig::parse(text).expect("a valid config");
    let server =
        start_with(config, ServerId(0), Seams::new(MemDisk::new())).await.expect("server starts");
    let mut client = Client::connect(server.client_addr).await;
    let data = Bytes::from(vec![5u8; 256 * 1024]);
    let create = Request::Create(
        CreateKind::Create,
        CreateRequest {
            path: "/big".into(),
            data: Some(data),
            acl: Acl::open_unsafe(),
            flags: 0,
            ttl: None,
        },
    );
    client.stream.write_all(&wire::encode_request(1, &create)).await.expect("send");
    let (header, _) = wire::decode_reply_header(&client.frame().await).expect("a reply");
    assert_eq!((header.xid, header.err), (1, 0));

    // 64 replies of 256 KiB (16 MiB), never read, against a budget of 1 MiB.
    let mut requests = BytesMut::new();
    for xid in 2..66 {
        let get = Request::GetData { path: "/big".into(), watch: false };
        requests.extend_from_slice(&wire::encode_request(xid, &get));
    }
    client.stream.write_all(&requests).await.expect("send");
    let report = async {
        loop {
            let report = server.report().await.expect("a report");
            if report.connections.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(STEP, report).await.expect("the connection is dropped");
    // What the client still reads ends with the close.
    let mut sink = vec![0u8; 1 << 16];
    let drained = async { while client.stream.read(&mut sink).await.is_ok_and(|n| n > 0) {} };
    tokio::time::timeout(STEP, drained).await.expect("the server closed the connection");
    server.shutdown().await;
}
