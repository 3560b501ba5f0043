//! [`ByteSink`]: where encoded arguments and results are written, so that a strategy can put
//! them straight where they travel (a frame buffer, a shared-memory region) without an
//! intermediate copy.
//!
//! Encoding goes through a postcard flavor that forwards every write to the sink. The price
//! is one dynamic call per write; postcard writes a byte string (`Vec<u8>`, `serde_bytes`,
//! `String`) as one length and one slice, so a large payload costs one call and one copy.

/// A destination for encoded bytes.
pub trait ByteSink {
    /// Appends `bytes`. A sink that cannot take them (a size limit, say) returns
    /// [`SinkRefused`] and keeps its own account of why; the encoding then stops.
    fn put(&mut self, bytes: &[u8]) -> Result<(), SinkRefused>;
}

/// A [`ByteSink`] turned the bytes down; the sink knows why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SinkRefused;

impl ByteSink for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) -> Result<(), SinkRefused> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

/// The postcard flavor that writes into a sink.
struct SinkFlavor<'a> {
    sink: &'a mut dyn ByteSink,
}

impl postcard::ser_flavors::Flavor for SinkFlavor<'_> {
    type Output = ();

    #[inline]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.try_extend(&[byte])
    }

    #[inline]
    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.sink
            .put(bytes)
            .map_err(|SinkRefused| postcard::Error::SerializeBufferFull)
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Writes the postcard encoding of `value` into `sink`.
pub(crate) fn encode_to<V: serde::Serialize + ?Sized>(
    value: &V,
    sink: &mut dyn ByteSink,
) -> postcard::Result<()> {
    postcard::serialize_with_flavor(value, SinkFlavor { sink })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes at most `room` bytes.
    struct Small {
        taken: Vec<u8>,
        room: usize,
    }

    impl ByteSink for Small {
        fn put(&mut self, bytes: &[u8]) -> Result<(), SinkRefused> {
            if self.taken.len() + bytes.len() > self.room {
                return Err(SinkRefused);
            }
            self.taken.extend_from_slice(bytes);
            Ok(())
        }
    }

    #[test]
    fn a_sink_gets_exactly_the_postcard_bytes() {
        let value = (7u64, "text".to_owned(), vec![1u8, 2, 3]);
        let mut sink = Vec::new();
        encode_to(&value, &mut sink).unwrap();
        assert_eq!(sink, postcard::to_stdvec(&value).unwrap());
    }

    #[test]
    fn a_refusal_stops_the_encoding() {
        let mut small = Small {
            taken: Vec::new(),
            room: 4,
        };
        let bytes = "x".repeat(100);
        assert!(encode_to(&bytes, &mut small).is_err());
    }
}
