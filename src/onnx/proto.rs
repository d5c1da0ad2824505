//! A minimal protobuf wire-format writer: the few encodings the ONNX messages latent writes need
//! (varints, little-endian fixed32, length-delimited bytes and sub-messages, packed varints).
//! Written by hand rather than with a protobuf crate: those need code generation tooling (protoc
//! or a build-time .proto compiler) for a dozen fields. Field numbers are onnx.proto's (ONNX
//! 1.x, stable since IR version 3); tests/onnx.rs parses every file with the `onnx` package.

/// One message being written: append fields, then nest it in its parent with [`Msg::msg`].
#[derive(Clone, Debug, Default)]
pub struct Msg(Vec<u8>);

const VARINT: u8 = 0;
const FIXED32: u8 = 5;
const LEN: u8 = 2;

impl Msg {
    pub fn new() -> Msg {
        Msg(Vec::new())
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint(((field as u64) << 3) | wire as u64);
    }

    /// An int32/int64/enum field (negative values take ten bytes, as protobuf's int64 does).
    pub fn int(&mut self, field: u32, v: i64) -> &mut Msg {
        self.key(field, VARINT);
        self.varint(v as u64);
        self
    }

    /// A float field (fixed32, little-endian).
    pub fn float(&mut self, field: u32, v: f32) -> &mut Msg {
        self.key(field, FIXED32);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A bytes field.
    pub fn bytes(&mut self, field: u32, b: &[u8]) -> &mut Msg {
        self.key(field, LEN);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    /// A string field.
    pub fn string(&mut self, field: u32, s: &str) -> &mut Msg {
        self.bytes(field, s.as_bytes())
    }

    /// A sub-message field.
    pub fn msg(&mut self, field: u32, m: &Msg) -> &mut Msg {
        self.bytes(field, &m.0)
    }

    /// A packed repeated int64 field.
    pub fn packed_ints(&mut self, field: u32, vs: &[i64]) -> &mut Msg {
        let mut body = Msg::new();
        for &v in vs {
            body.varint(v as u64);
        }
        self.bytes(field, &body.0)
    }
}

/// Field numbers and enum values of onnx.proto.
pub mod onnx {
    pub mod model {
        pub const IR_VERSION: u32 = 1;
        pub const PRODUCER_NAME: u32 = 2;
        pub const PRODUCER_VERSION: u32 = 3;
        pub const DOMAIN: u32 = 4;
        pub const MODEL_VERSION: u32 = 5;
        pub const DOC_STRING: u32 = 6;
        pub const GRAPH: u32 = 7;
        pub const OPSET_IMPORT: u32 = 8;
    }
    pub mod opset_id {
        pub const DOMAIN: u32 = 1;
        pub const VERSION: u32 = 2;
    }
    pub mod graph {
        pub const NODE: u32 = 1;
        pub const NAME: u32 = 2;
        pub const INITIALIZER: u32 = 5;
        pub const DOC_STRING: u32 = 10;
        pub const INPUT: u32 = 11;
        pub const OUTPUT: u32 = 12;
    }
    pub mod node {
        pub const INPUT: u32 = 1;
        pub const OUTPUT: u32 = 2;
        pub const NAME: u32 = 3;
        pub const OP_TYPE: u32 = 4;
        pub const ATTRIBUTE: u32 = 5;
    }
    pub mod attribute {
        pub const NAME: u32 = 1;
        pub const F: u32 = 2;
        pub const I: u32 = 3;
        pub const T: u32 = 5;
        pub const TYPE: u32 = 20;
        // AttributeProto.AttributeType
        pub const FLOAT: i64 = 1;
        pub const INT: i64 = 2;
        pub const TENSOR: i64 = 4;
    }
    pub mod tensor {
        pub const DIMS: u32 = 1;
        pub const DATA_TYPE: u32 = 2;
        pub const NAME: u32 = 8;
        pub const RAW_DATA: u32 = 9;
        // TensorProto.DataType
        pub const FLOAT: i64 = 1;
        pub const INT64: i64 = 7;
    }
    pub mod value_info {
        pub const NAME: u32 = 1;
        pub const TYPE: u32 = 2;
    }
    pub mod type_proto {
        pub const TENSOR_TYPE: u32 = 1;
        // TypeProto.Tensor
        pub const ELEM_TYPE: u32 = 1;
        pub const SHAPE: u32 = 2;
    }
    pub mod shape {
        pub const DIM: u32 = 1;
        // TensorShapeProto.Dimension
        pub const DIM_VALUE: u32 = 1;
        pub const DIM_PARAM: u32 = 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_matches_protobuf() {
        let mut m = Msg::new();
        m.int(1, 150);
        assert_eq!(m.clone().into_bytes(), [0x08, 0x96, 0x01]);
        let mut s = Msg::new();
        s.string(2, "testing");
        assert_eq!(s.into_bytes(), [0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g']);
        let mut n = Msg::new();
        n.int(3, -1);
        assert_eq!(n.into_bytes(), [0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        let mut f = Msg::new();
        f.float(2, 1.0);
        assert_eq!(f.into_bytes(), [0x15, 0x00, 0x00, 0x80, 0x3f]);
        let mut p = Msg::new();
        p.packed_ints(4, &[3, 270, 86942]);
        assert_eq!(p.into_bytes(), [0x22, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05]);
    }
}
