//! A connection's turns, one after another on one thread while its input lasts: the layer's
//! half of the [`Protocol`](crate::Protocol) contract.
//!
//! After each turn the connection closes (the turn said so), goes on with the next turn at
//! once (input is buffered: pipelined requests are served in order, by this thread, and never
//! by two turns at once), or rests without a thread until its next input. Then the thread
//! carries on with other resting connections that have input ([`carry_on`]).

use ythread::Yielder;

use crate::acceptors::AcceptorId;
use crate::connection::Connection;
use crate::connections::Admitted;
use crate::hub::Hub;
use crate::protocol::Turn;

/// Serves turns on `admitted`, which has input, then closes it or hands it back to rest.
/// Returns whether the thread may serve another connection (see [`Admitted::rest`]).
#[must_use]
pub(crate) fn serve(y: &Yielder<'_>, mut admitted: Admitted, hub: &Hub) -> bool {
    loop {
        let mut connection = Connection::new(
            &admitted.socket,
            &mut admitted.input,
            &admitted.state,
            hub.timeouts,
        );
        let turn = hub.protocol.turn(y, &mut connection);
        let consumed = connection.finish();
        if turn == Turn::Close {
            return admitted.finish();
        }
        if admitted.input.is_empty() {
            return admitted.rest();
        }
        // A turn that took none of the buffered input would be handed the same again.
        if consumed == 0 {
            return admitted.finish();
        }
    }
}

/// After its connection's turns, a thread serves the resting connections that have input
/// now, one after another, until none has (or it must end: see [`Admitted::rest`]); thread
/// `server` in the table. Returns whether it may go on serving.
///
/// Why: under load the next request is usually waiting by the time a turn ends, and serving
/// it here costs no wake-up of the watcher and no hand-off to another thread (two context
/// switches and a futex wake a request); the watcher starts a thread only for input that
/// nobody took.
pub(crate) fn carry_on(y: &Yielder<'_>, hub: &Hub, server: AcceptorId) -> bool {
    loop {
        if y.is_cancelled() {
            return false;
        }
        let Some(next) = crate::ready::take_ready(hub, server) else {
            return true;
        };
        if !serve(y, next, hub) {
            return false;
        }
    }
}
