//! The task that owns one websocket connection ([`run_connection`]): frames, pings, the
//! keep-alive, the rate limit, the closing handshake, and the writes of queued messages.

use super::link::{Link, Work};
use super::registry::SocketError;
use super::registry::{Command, Queued};
use super::settings::RateLimit;
use super::spill::{SpillIo, READ_BUFFER};
use super::{code, Settings, CLOSE_TIMEOUT, SEND_TIMEOUT, TARGET};
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use inphms_sdk::abi::WsMessage;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

/// The connection task: returns the close code and reason.
pub(super) async fn run_connection(
    on_upgrade: OnUpgrade,
    max_message: usize,
    settings: Settings,
    link: &Link,
) -> (u16, String) {
    // hyper hands the connection over right after writing the 101; a close asked for
    // meanwhile is seen by the loop below, which then sends it properly.
    let upgraded = match tokio::time::timeout(Duration::from_secs(10), on_upgrade).await {
        Ok(Ok(u)) => u,
        Ok(Err(e)) => {
            tracing::debug!(target: TARGET, "upgrade failed: {e}");
            return (code::ABNORMAL, String::new());
        }
        Err(_) => {
            tracing::debug!(target: TARGET, "upgrade not completed in time");
            return (code::ABNORMAL, String::new());
        }
    };
    // Small buffers: an idle socket holds little memory (tungstenite's defaults are
    // 128 KiB each); a large message grows them as needed. The socket is read in larger
    // chunks than tungstenite's buffer, the rest kept until taken ([`SpillIo`]).
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0);
    let io = SpillIo::new(TokioIo::new(upgraded));
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
    let mut status: Option<(u16, String)> = None;
    // Set once we sent a Close: the peer then has CLOSE_TIMEOUT to answer.
    let mut close_deadline: Option<Instant> = None;
    let mut rate = RateLimit::new(&settings);
    let opened = Instant::now();
    let keep_alive_end = settings.keep_alive.and_then(|k| opened.checked_add(k));
    // The next ping, when the peer stays silent; then the deadline for its answer.
    let ping_after = settings.ping_after;
    let mut ping_at = opened + ping_after;
    let mut pong_deadline: Option<Instant> = None;
    // Since when reads are paused (the handler has not taken the messages before): the
    // peer's answers to a ping are not read meanwhile, so the keep-alive's clock stops.
    let mut paused_at: Option<Instant> = None;
    // One timer for every deadline (the next ping or its answer's, the keep-alive's, the
    // peer's answer to a Close), set to the nearest: an idle socket keeps one `Sleep`.
    let timer = tokio::time::sleep_until(ping_at);
    tokio::pin!(timer);
    loop {
        let (work, may_read) = link.take_work(close_deadline.is_some());
        if close_deadline.is_none() {
            if !may_read {
                paused_at.get_or_insert_with(Instant::now);
            } else if let Some(paused) = paused_at.take() {
                let waited = paused.elapsed();
                ping_at += waited;
                pong_deadline = pong_deadline.map(|d| d + waited);
            }
        }
        match work {
            Some(Work::Shut(code, reason)) => {
                status.get_or_insert((code, reason.clone()));
                close_deadline = Some(start_close(&mut ws, code, &reason).await);
                continue;
            }
            Some(Work::Command(Command::Send(queued, reply))) => {
                // A client that does not read lets the write wait: at most SEND_TIMEOUT,
                // during which nothing else of this socket is done, then it is cut.
                // The message's charge to the budgets goes back once written (or cut).
                let Queued { message, _charge } = queued;
                let r = match tokio::time::timeout(SEND_TIMEOUT, ws.send(message)).await {
                    Ok(r) => r.map_err(|e| match e {
                        WsError::AlreadyClosed
                        | WsError::ConnectionClosed
                        | WsError::Protocol(_) => SocketError::Closed,
                        e => SocketError::Send(e),
                    }),
                    Err(_) => {
                        tracing::info!(target: TARGET, "websocket client took no data for {}s; cut (1006)", SEND_TIMEOUT.as_secs());
                        status.get_or_insert((code::ABNORMAL, "send timed out".to_owned()));
                        break;
                    }
                };
                if let Some(reply) = reply {
                    let _ = reply.send(r);
                }
                continue;
            }
            Some(Work::Command(Command::Close(frame))) => {
                status.get_or_insert((u16::from(frame.code), frame.reason.as_str().to_owned()));
                close_deadline =
                    Some(start_close(&mut ws, u16::from(frame.code), frame.reason.as_str()).await);
                continue;
            }
            None => {}
        }
        let reading = may_read || close_deadline.is_some();
        let deadline = match close_deadline {
            Some(d) => Some(d),
            None => {
                let ping = reading.then(|| pong_deadline.unwrap_or(ping_at));
                match (ping, keep_alive_end) {
                    (Some(p), Some(k)) => Some(p.min(k)),
                    (p, k) => p.or(k),
                }
            }
        };
        if let Some(d) = deadline {
            if timer.deadline() != d {
                timer.as_mut().reset(d);
            }
        }
        tokio::select! {
            () = link.woken() => {}
            frame = ws.next(), if reading => {
                let now = Instant::now();
                ping_at = now + ping_after;
                pong_deadline = None;
                if matches!(frame, Some(Ok(Message::Text(_) | Message::Binary(_) | Message::Ping(_)))) && close_deadline.is_none() && rate.exceeded(now) {
                    tracing::info!(target: TARGET, "websocket client sends faster than websocket_rate_limit_burst/delay allow; closed with 1013");
                    status.get_or_insert((code::TRY_AGAIN_LATER, "rate limit exceeded".to_owned()));
                    close_deadline = Some(start_close(&mut ws, code::TRY_AGAIN_LATER, "rate limit exceeded").await);
                    continue;
                }
                match frame {
                    None => break,
                    // Past the queue's bound only while closing: dropped, as unread.
                    Some(Ok(Message::Text(t))) => if may_read {
                        link.deliver(WsMessage::Text(t.as_str().into()));
                    },
                    Some(Ok(Message::Binary(b))) => if may_read {
                        link.deliver(WsMessage::Binary(b.to_vec().into()));
                    },
                    Some(Ok(Message::Close(frame))) => {
                        if status.is_none() {
                            status = Some(frame.map_or((code::NO_STATUS, String::new()), |f| (u16::from(f.code), f.reason.as_str().to_owned())));
                        }
                        // Sends tungstenite's queued Close reply; the next read ends the stream.
                        let _ = ws.flush().await;
                        close_deadline.get_or_insert_with(|| Instant::now() + CLOSE_TIMEOUT);
                    }
                    // Pings are answered by tungstenite; write the Pong now.
                    Some(Ok(_)) => { let _ = ws.flush().await; }
                    Some(Err(e)) => {
                        tracing::debug!(target: TARGET, "websocket read error: {e}");
                        let code = match e {
                            WsError::Capacity(_) => code::TOO_BIG,
                            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => code::ABNORMAL,
                            WsError::Protocol(_) => 1002,
                            WsError::Utf8(_) => 1007,
                            _ => code::ABNORMAL,
                        };
                        if code != code::ABNORMAL {
                            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(Some(CloseFrame { code: code.into(), reason: "".into() }))).await;
                        }
                        status.get_or_insert((code, e.to_string()));
                        break;
                    }
                }
            }
            () = &mut timer, if deadline.is_some() => {
                let due = timer.deadline();
                if close_deadline.is_some() {
                    tracing::debug!(target: TARGET, "websocket peer did not complete the close in time; cut");
                    break;
                }
                if keep_alive_end.is_some_and(|k| k <= due) {
                    status.get_or_insert((code::KEEP_ALIVE_TIMEOUT, "Keep alive timeout".to_owned()));
                    close_deadline = Some(start_close(&mut ws, code::KEEP_ALIVE_TIMEOUT, "Keep alive timeout").await);
                    continue;
                }
                if pong_deadline.is_some() {
                    tracing::info!(target: TARGET, "websocket peer did not answer a ping in {}s; cut", ping_after.as_secs());
                    status.get_or_insert((code::ABNORMAL, "ping unanswered".to_owned()));
                    break;
                }
                if tokio::time::timeout(SEND_TIMEOUT, ws.send(Message::Ping(Bytes::new()))).await.is_err() {
                    tracing::info!(target: TARGET, "websocket client took no data for {}s; cut (1006)", SEND_TIMEOUT.as_secs());
                    status.get_or_insert((code::ABNORMAL, "send timed out".to_owned()));
                    break;
                }
                pong_deadline = Some(Instant::now() + ping_after);
            }
        }
    }
    status.unwrap_or((code::ABNORMAL, String::new()))
}

/// Sends a Close frame (best effort); returns the deadline for the peer's answer.
async fn start_close<S>(ws: &mut WebSocketStream<S>, code: u16, reason: &str) -> Instant
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    let _ = tokio::time::timeout_at(deadline, ws.close(Some(frame))).await;
    deadline
}
