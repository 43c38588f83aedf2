//! Just enough of the protobuf wire format to edit an ONNX model in place.
//!
//! The voice's graph is edited at load time (see `noise`). Decoding the whole model into
//! generated structs and encoding it again would copy all 60 MB of weights twice and keep only
//! the fields the bundled `onnx.proto` knows; working on the wire format instead, every field
//! the edit does not touch is copied byte for byte, so nothing is lost whatever version of
//! ONNX wrote the file.

/// Protobuf wire types (`VARINT`, `I64`, `LEN`, `I32`); groups (3, 4) are not used by ONNX.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// A field's payload.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    /// Strings, bytes, embedded messages and packed repeated fields.
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// One field of a message as it sits on the wire.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field<'a> {
    pub(crate) number: u32,
    pub(crate) value: Value<'a>,
    /// The whole encoded field, key included, for copying it unchanged.
    pub(crate) raw: &'a [u8],
}

impl<'a> Field<'a> {
    /// The payload of a length-delimited field (string, bytes, message).
    pub(crate) fn bytes(&self) -> Option<&'a [u8]> {
        match self.value {
            Value::Bytes(bytes) => Some(bytes),
            _ => None,
        }
    }
}

/// The fields of an encoded message, in order; a field that does not parse ends the walk with
/// an error naming the byte offset.
pub(crate) fn fields(message: &[u8]) -> impl Iterator<Item = Result<Field<'_>, String>> {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= message.len() {
            return None;
        }
        let start = at;
        let field = read_field(message, &mut at).map(|(number, value)| Field {
            number,
            value,
            raw: &message[start..at],
        });
        if field.is_err() {
            at = message.len();
        }
        Some(field.map_err(|reason| format!("byte {start}: {reason}")))
    })
}

fn read_field<'a>(message: &'a [u8], at: &mut usize) -> Result<(u32, Value<'a>), String> {
    let key = read_varint(message, at)?;
    let number = u32::try_from(key >> 3)
        .ok()
        .filter(|&number| number > 0)
        .ok_or_else(|| format!("field number {} is invalid", key >> 3))?;
    let value = match (key & 7) as u8 {
        VARINT => Value::Varint(read_varint(message, at)?),
        FIXED64 => Value::Fixed64(u64::from_le_bytes(
            take(message, at, 8)?.try_into().unwrap_or_default(),
        )),
        LEN => {
            let len = usize::try_from(read_varint(message, at)?)
                .map_err(|_| "length does not fit in memory".to_owned())?;
            Value::Bytes(take(message, at, len)?)
        }
        FIXED32 => Value::Fixed32(u32::from_le_bytes(
            take(message, at, 4)?.try_into().unwrap_or_default(),
        )),
        other => return Err(format!("wire type {other} is not used by ONNX")),
    };
    Ok((number, value))
}

fn take<'a>(message: &'a [u8], at: &mut usize, len: usize) -> Result<&'a [u8], String> {
    let end = at
        .checked_add(len)
        .filter(|&end| end <= message.len())
        .ok_or_else(|| format!("a {len}-byte value runs past the end of its message"))?;
    let bytes = &message[*at..end];
    *at = end;
    Ok(bytes)
}

fn read_varint(message: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut value = 0_u64;
    for shift in (0..64).step_by(7) {
        let byte = *message
            .get(*at)
            .ok_or("a varint runs past the end of its message")?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("a varint is longer than 10 bytes".to_owned())
}

/// Appends a varint field (`int32`, `int64`, enums; negative numbers as 10-byte two's
/// complement, as protobuf encodes `int64`).
pub(crate) fn put_varint(out: &mut Vec<u8>, number: u32, value: u64) {
    put_key(out, number, VARINT);
    put_raw_varint(out, value);
}

/// Appends a length-delimited field: a string, bytes or an encoded message.
pub(crate) fn put_bytes(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_len_prefix(out, number, bytes.len());
    out.extend_from_slice(bytes);
}

/// Appends the key and length of a length-delimited field whose `len` bytes the caller
/// appends next, for payloads too large to build in a buffer of their own.
pub(crate) fn put_len_prefix(out: &mut Vec<u8>, number: u32, len: usize) {
    put_key(out, number, LEN);
    put_raw_varint(out, len as u64);
}

fn put_key(out: &mut Vec<u8>, number: u32, wire_type: u8) {
    put_raw_varint(out, u64::from(number) << 3 | u64::from(wire_type));
}

fn put_raw_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_fields_read_back_with_their_raw_bytes() {
        let mut message = Vec::new();
        put_varint(&mut message, 1, 300);
        put_bytes(&mut message, 4, b"RandomNormalLike");
        put_varint(&mut message, 3, -1_i64 as u64);
        // Field 2, wire type 5 (fixed32): 1.0_f32, as a float attribute is written.
        message.extend_from_slice(&[0x15, 0x00, 0x00, 0x80, 0x3f]);
        let read: Vec<Field> = fields(&message).collect::<Result<_, _>>().unwrap();
        assert_eq!(read.len(), 4);
        assert_eq!((read[0].number, read[0].value), (1, Value::Varint(300)));
        assert_eq!(read[0].raw, [0x08, 0xac, 0x02]);
        assert_eq!(read[1].bytes(), Some(&b"RandomNormalLike"[..]));
        assert_eq!(read[2].value, Value::Varint(u64::MAX));
        assert_eq!(read[2].raw.len(), 11);
        assert_eq!(read[3].value, Value::Fixed32(1.0_f32.to_bits()));
        let copied: Vec<u8> = read.iter().flat_map(|f| f.raw.iter().copied()).collect();
        assert_eq!(copied, message);
    }

    #[test]
    fn truncated_or_odd_input_is_an_error_not_a_panic() {
        for broken in [
            &[0x0a, 0x05, b'a'][..], // length past the end
            &[0x08, 0x80][..],       // unfinished varint
            &[0x0b][..],             // wire type 3 (group)
            &[0x00, 0x01][..],       // field number 0
            &[0x09, 1, 2, 3][..],    // short fixed64
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ][..],
        ] {
            let result: Result<Vec<Field>, String> = fields(broken).collect();
            assert!(result.is_err(), "{broken:?} parsed");
        }
    }
}
