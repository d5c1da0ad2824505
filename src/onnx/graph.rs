//! An ONNX graph under construction: nodes with generated value names, float and int64
//! initializers, inputs and outputs with a dynamic batch dimension; and the ModelProto around it.

use std::collections::HashMap;

use super::proto::{Msg, onnx};
use super::{IR_VERSION, OPSET};

/// A node attribute.
pub enum Attr {
    Int(&'static str, i64),
    Float(&'static str, f32),
    /// A one-element float tensor (ConstantOfShape's `value`).
    FloatTensor(&'static str, f32),
}

#[derive(Default)]
pub struct Graph {
    nodes: Vec<Msg>,
    initializers: Vec<Msg>,
    inputs: Vec<Msg>,
    outputs: Vec<Msg>,
    counter: usize,
    /// Float scalars and int64 vectors already made, by value: one initializer each.
    scalars: HashMap<u32, String>,
    int_vectors: HashMap<Vec<i64>, String>,
    /// Float initializers by a caller's key (a parameter block's offset): tied weights share one.
    keyed: HashMap<(usize, u8), String>,
}

fn tensor(name: &str, dims: &[usize], data_type: i64, raw: &[u8]) -> Msg {
    let mut t = Msg::new();
    t.packed_ints(onnx::tensor::DIMS, &dims.iter().map(|&d| d as i64).collect::<Vec<_>>());
    t.int(onnx::tensor::DATA_TYPE, data_type);
    if !name.is_empty() {
        t.string(onnx::tensor::NAME, name);
    }
    t.bytes(onnx::tensor::RAW_DATA, raw);
    t
}

fn f32_bytes(data: &[f32]) -> Vec<u8> {
    data.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// ValueInfoProto of a float tensor [batch, width] ("batch" a symbolic dimension).
fn batch_value_info(name: &str, width: usize) -> Msg {
    let mut batch = Msg::new();
    batch.string(onnx::shape::DIM_PARAM, "batch");
    let mut cols = Msg::new();
    cols.int(onnx::shape::DIM_VALUE, width as i64);
    let mut shape = Msg::new();
    shape.msg(onnx::shape::DIM, &batch).msg(onnx::shape::DIM, &cols);
    let mut tt = Msg::new();
    tt.int(onnx::type_proto::ELEM_TYPE, onnx::tensor::FLOAT).msg(onnx::type_proto::SHAPE, &shape);
    let mut ty = Msg::new();
    ty.msg(onnx::type_proto::TENSOR_TYPE, &tt);
    let mut vi = Msg::new();
    vi.string(onnx::value_info::NAME, name).msg(onnx::value_info::TYPE, &ty);
    vi
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("{hint}_{}", self.counter)
    }

    /// A float initializer named after `hint`; returns its name.
    pub fn floats(&mut self, hint: &str, dims: &[usize], data: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len());
        let name = self.fresh(hint);
        self.initializers.push(tensor(&name, dims, onnx::tensor::FLOAT, &f32_bytes(data)));
        name
    }

    /// A float initializer made once per `key` (later calls return the first's name).
    pub fn floats_once(
        &mut self,
        key: (usize, u8),
        hint: &str,
        dims: &[usize],
        data: impl FnOnce() -> Vec<f32>,
    ) -> String {
        if let Some(n) = self.keyed.get(&key) {
            return n.clone();
        }
        let name = self.floats(hint, dims, &data());
        self.keyed.insert(key, name.clone());
        name
    }

    /// A float scalar (rank 0) initializer, shared by every use of the same value.
    pub fn scalar(&mut self, v: f32) -> String {
        if let Some(n) = self.scalars.get(&v.to_bits()) {
            return n.clone();
        }
        let name = self.fresh("const");
        self.initializers.push(tensor(&name, &[], onnx::tensor::FLOAT, &v.to_le_bytes()));
        self.scalars.insert(v.to_bits(), name.clone());
        name
    }

    /// An int64 vector initializer (axes, slice bounds), shared by every use of the same value.
    pub fn ints(&mut self, vs: &[i64]) -> String {
        if let Some(n) = self.int_vectors.get(vs) {
            return n.clone();
        }
        let name = self.fresh("ints");
        let raw: Vec<u8> = vs.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(tensor(&name, &[vs.len()], onnx::tensor::INT64, &raw));
        self.int_vectors.insert(vs.to_vec(), name.clone());
        name
    }

    /// Adds a node with one output and returns the output's name.
    pub fn node(&mut self, op: &str, inputs: &[&str], attrs: &[Attr]) -> String {
        let out = self.fresh(&op.to_ascii_lowercase());
        let mut n = Msg::new();
        for i in inputs {
            n.string(onnx::node::INPUT, i);
        }
        n.string(onnx::node::OUTPUT, &out);
        n.string(onnx::node::NAME, &format!("{op}_{}", self.counter));
        n.string(onnx::node::OP_TYPE, op);
        for a in attrs {
            let mut m = Msg::new();
            match *a {
                Attr::Int(name, v) => {
                    m.string(onnx::attribute::NAME, name).int(onnx::attribute::I, v);
                    m.int(onnx::attribute::TYPE, onnx::attribute::INT);
                }
                Attr::Float(name, v) => {
                    m.string(onnx::attribute::NAME, name).float(onnx::attribute::F, v);
                    m.int(onnx::attribute::TYPE, onnx::attribute::FLOAT);
                }
                Attr::FloatTensor(name, v) => {
                    let t = tensor("", &[1], onnx::tensor::FLOAT, &v.to_le_bytes());
                    m.string(onnx::attribute::NAME, name).msg(onnx::attribute::T, &t);
                    m.int(onnx::attribute::TYPE, onnx::attribute::TENSOR);
                }
            }
            n.msg(onnx::node::ATTRIBUTE, &m);
        }
        self.nodes.push(n);
        out
    }

    /// Shorthand for a node of two inputs and no attributes.
    pub fn op2(&mut self, op: &str, a: &str, b: &str) -> String {
        self.node(op, &[a, b], &[])
    }

    /// Shorthand for a node of one input and no attributes.
    pub fn op1(&mut self, op: &str, a: &str) -> String {
        self.node(op, &[a], &[])
    }

    /// Declares a graph input [batch, width] named `name` (its value is referred to by `name`).
    pub fn input(&mut self, name: &str, width: usize) -> String {
        self.inputs.push(batch_value_info(name, width));
        name.to_string()
    }

    /// Declares `value` as the graph output `name` [batch, width] (through an Identity node, so
    /// the output has its own name).
    pub fn output(&mut self, name: &str, value: &str, width: usize) {
        let mut n = Msg::new();
        n.string(onnx::node::INPUT, value);
        n.string(onnx::node::OUTPUT, name);
        n.string(onnx::node::NAME, &format!("output_{name}"));
        n.string(onnx::node::OP_TYPE, "Identity");
        self.nodes.push(n);
        self.outputs.push(batch_value_info(name, width));
    }

    /// The serialised ModelProto: IR version, opset, producer "latent" and this crate's version.
    pub fn model(self, graph_name: &str, doc: &str) -> Vec<u8> {
        let mut g = Msg::new();
        for n in &self.nodes {
            g.msg(onnx::graph::NODE, n);
        }
        g.string(onnx::graph::NAME, graph_name);
        for t in &self.initializers {
            g.msg(onnx::graph::INITIALIZER, t);
        }
        g.string(onnx::graph::DOC_STRING, doc);
        for i in &self.inputs {
            g.msg(onnx::graph::INPUT, i);
        }
        for o in &self.outputs {
            g.msg(onnx::graph::OUTPUT, o);
        }
        let mut opset = Msg::new();
        opset.string(onnx::opset_id::DOMAIN, "").int(onnx::opset_id::VERSION, OPSET);
        let mut m = Msg::new();
        m.int(onnx::model::IR_VERSION, IR_VERSION)
            .string(onnx::model::PRODUCER_NAME, "latent")
            .string(onnx::model::PRODUCER_VERSION, env!("CARGO_PKG_VERSION"))
            .string(onnx::model::DOMAIN, "ai.latent")
            .int(onnx::model::MODEL_VERSION, 1)
            .string(onnx::model::DOC_STRING, doc)
            .msg(onnx::model::GRAPH, &g)
            .msg(onnx::model::OPSET_IMPORT, &opset);
        m.into_bytes()
    }
}
