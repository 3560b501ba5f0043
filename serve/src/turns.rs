//! A connection's turns, one after another on one thread while its input lasts: the layer's
//! half of the [`Protocol`](crate::Protocol) contract.
//!
//! After each turn the connection closes (the turn said so), goes on with the next turn at
//! once (input is buffered: pipelined requests are served in order, by this thread, and never
//! by two turns at once), or rests without a thread until its next input.

use ythread::Yielder;

use crate::connection::Connection;
use crate::connections::Admitted;
use crate::hub::Hub;
use crate::protocol::Turn;

/// Serves turns on `admitted`, which has input, then closes it or hands it back to rest.
pub(crate) fn serve(y: &Yielder<'_>, mut admitted: Admitted, hub: &Hub) {
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
            return admitted.close();
        }
        if admitted.input.is_empty() {
            return admitted.rest();
        }
        // A turn that took none of the buffered input would be handed the same again.
        if consumed == 0 {
            return admitted.close();
        }
    }
}
