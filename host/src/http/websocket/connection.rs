//! The task that owns one websocket connection ([`run_connection`]): frames, pings, the
//! keep-alive, the rate limit, the closing handshake, and the writes of queued messages.

use super::registry::SocketError;
use super::registry::{Command, Queued};
use super::settings::RateLimit;
use super::{code, Settings, CLOSE_TIMEOUT, SEND_TIMEOUT, TARGET};
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use inphms_sdk::abi::WsMessage;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

/// The connection task's ends of the socket's channels.
pub(super) struct Link {
    pub(super) incoming: mpsc::Sender<WsMessage>,
    pub(super) commands: mpsc::Receiver<Command>,
    pub(super) shutdown: watch::Receiver<Option<(u16, String)>>,
}

/// The connection task: returns the close code and reason.
pub(super) async fn run_connection(
    on_upgrade: OnUpgrade,
    max_message: usize,
    settings: Settings,
    link: Link,
) -> (u16, String) {
    let Link {
        incoming: in_tx,
        mut commands,
        mut shutdown,
    } = link;
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
    // 128 KiB each); a large message grows them as needed.
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let mut ws =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
    let mut permit: Option<mpsc::OwnedPermit<WsMessage>> = None;
    let mut status: Option<(u16, String)> = None;
    // Set once we sent a Close: the peer then has CLOSE_TIMEOUT to answer.
    let mut close_deadline: Option<tokio::time::Instant> = None;
    let mut commands_open = true;
    let mut shutdown_open = true;
    let mut rate = RateLimit::new(&settings);
    let opened = tokio::time::Instant::now();
    let keep_alive_end = settings.keep_alive.and_then(|k| opened.checked_add(k));
    // The next ping, when the peer stays silent; then the deadline for its answer.
    let ping_after = settings.ping_after;
    let mut ping_at = opened + ping_after;
    let mut pong_deadline: Option<tokio::time::Instant> = None;
    // Since when reads are paused (the handler has not taken the messages before): the
    // peer's answers to a ping are not read meanwhile, so the keep-alive's clock stops.
    let mut paused_at: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            p = in_tx.clone().reserve_owned(), if permit.is_none() && close_deadline.is_none() => {
                match p {
                    Ok(p) => {
                        permit = Some(p);
                        if let Some(paused) = paused_at.take() {
                            let waited = paused.elapsed();
                            ping_at += waited;
                            pong_deadline = pong_deadline.map(|d| d + waited);
                        }
                    }
                    // The receiver lives in the registry; gone means released: close.
                    Err(_) => close_deadline = Some(start_close(&mut ws, code::NORMAL, "").await),
                }
            }
            frame = ws.next(), if permit.is_some() || close_deadline.is_some() => {
                let now = tokio::time::Instant::now();
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
                    Some(Ok(Message::Text(t))) => {
                        deliver(&mut permit, WsMessage::Text(t.as_str().into()));
                        paused_at = Some(now);
                    }
                    Some(Ok(Message::Binary(b))) => {
                        deliver(&mut permit, WsMessage::Binary(b.to_vec().into()));
                        paused_at = Some(now);
                    }
                    Some(Ok(Message::Close(frame))) => {
                        if status.is_none() {
                            status = Some(frame.map_or((code::NO_STATUS, String::new()), |f| (u16::from(f.code), f.reason.as_str().to_owned())));
                        }
                        // Sends tungstenite's queued Close reply; the next read ends the stream.
                        let _ = ws.flush().await;
                        close_deadline.get_or_insert_with(|| tokio::time::Instant::now() + CLOSE_TIMEOUT);
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
            cmd = commands.recv(), if commands_open && close_deadline.is_none() => match cmd {
                Some(Command::Send(queued, reply)) => {
                    // A client that does not read lets the write wait: at most SEND_TIMEOUT,
                    // during which nothing else of this socket is done, then it is cut.
                    // The message's charge to the budgets goes back once written (or cut).
                    let Queued { message, _charge } = queued;
                    let r = match tokio::time::timeout(SEND_TIMEOUT, ws.send(message)).await {
                        Ok(r) => r.map_err(|e| match e {
                            WsError::AlreadyClosed | WsError::ConnectionClosed | WsError::Protocol(_) => SocketError::Closed,
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
                }
                Some(Command::Close(frame)) => {
                    status.get_or_insert((u16::from(frame.code), frame.reason.as_str().to_owned()));
                    close_deadline = Some(start_close(&mut ws, u16::from(frame.code), frame.reason.as_str()).await);
                }
                None => {
                    commands_open = false;
                    close_deadline = Some(start_close(&mut ws, code::NORMAL, "").await);
                }
            },
            changed = shutdown.changed(), if shutdown_open => {
                let requested = shutdown.borrow_and_update().clone();
                if changed.is_err() {
                    shutdown_open = false;
                } else if let Some((code, reason)) = requested {
                    if close_deadline.is_none() {
                        status.get_or_insert((code, reason.clone()));
                        close_deadline = Some(start_close(&mut ws, code, &reason).await);
                    }
                }
            }
            _ = tokio::time::sleep_until(pong_deadline.unwrap_or(ping_at)), if close_deadline.is_none() && permit.is_some() => {
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
                pong_deadline = Some(tokio::time::Instant::now() + ping_after);
            }
            _ = sleep_until(keep_alive_end), if keep_alive_end.is_some() && close_deadline.is_none() => {
                status.get_or_insert((code::KEEP_ALIVE_TIMEOUT, "Keep alive timeout".to_owned()));
                close_deadline = Some(start_close(&mut ws, code::KEEP_ALIVE_TIMEOUT, "Keep alive timeout").await);
            }
            _ = sleep_until(close_deadline), if close_deadline.is_some() => {
                tracing::debug!(target: TARGET, "websocket peer did not complete the close in time; cut");
                break;
            }
        }
    }
    status.unwrap_or((code::ABNORMAL, String::new()))
}

fn deliver(permit: &mut Option<mpsc::OwnedPermit<WsMessage>>, message: WsMessage) {
    if let Some(p) = permit.take() {
        p.send(message);
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Sends a Close frame (best effort); returns the deadline for the peer's answer.
async fn start_close<S>(
    ws: &mut WebSocketStream<S>,
    code: u16,
    reason: &str,
) -> tokio::time::Instant
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let deadline = tokio::time::Instant::now() + CLOSE_TIMEOUT;
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    let _ = tokio::time::timeout_at(deadline, ws.close(Some(frame))).await;
    deadline
}
