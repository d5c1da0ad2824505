//! Version 5 of the model file: restricted Boltzmann machines ([`RbmModel`]). See the parent
//! module's docs for the layout.

use std::path::Path;

use super::*;
use crate::rbm_model::{RbmModel, RbmTraining, unit_code, unit_from_code};
use crate::train::Rbm;

/// The RBM architecture section: n_visible, n_hidden, two unit codes, seed, epochs trained,
/// the last fit's CD-k and persistence.
const RBM_ARCH_BYTES: usize = 40;

fn rbm_encoded_len(m: &RbmModel) -> usize {
    HEADER_BYTES + RBM_ARCH_BYTES + 8 + 4 * m.param_count() + 4
}

fn encode_rbm<S: Sink>(m: &RbmModel, out: &mut S) -> std::result::Result<(), S::Error> {
    let mut head = Vec::with_capacity(HEADER_BYTES + RBM_ARCH_BYTES + 8);
    let u32_ = |h: &mut Vec<u8>, v: u32| h.extend_from_slice(&v.to_le_bytes());
    head.extend_from_slice(&MAGIC);
    u32_(&mut head, RBM_VERSION);
    u32_(&mut head, FLAG_RBM);
    u32_(&mut head, RBM_ARCH_BYTES as u32);
    u32_(&mut head, u32_of(m.n_visible()));
    u32_(&mut head, u32_of(m.n_hidden()));
    head.extend_from_slice(&unit_code(m.visible()).to_le_bytes());
    head.extend_from_slice(&unit_code(m.hidden()).to_le_bytes());
    head.extend_from_slice(&m.seed().to_le_bytes());
    let t = m.training();
    head.extend_from_slice(&t.epochs.to_le_bytes());
    u32_(&mut head, t.k);
    u32_(&mut head, t.persistent as u32);
    debug_assert_eq!(head.len(), HEADER_BYTES + RBM_ARCH_BYTES);
    head.extend_from_slice(&(m.param_count() as u64).to_le_bytes());
    out.put(&head)?;
    put_params(m.params(), out)
}

/// The serialised form of an RBM: exactly the bytes [`save_rbm`] writes.
pub fn rbm_to_bytes(m: &RbmModel) -> Vec<u8> {
    to_bytes_of(m)
}

/// Parses an RBM model file, checked as [`from_bytes`] checks a network's. A network's or a
/// VAE's file is [`Error::BadFormat`] "wrong kind".
pub fn rbm_from_bytes(bytes: &[u8]) -> Result<RbmModel> {
    from_bytes_of(bytes)
}

/// Saves an RBM atomically, as [`save`] saves a network.
pub fn save_rbm(m: &RbmModel, path: &Path) -> Result<()> {
    save_of(m, path)
}

/// Reads and parses an RBM model file, as [`load`] reads a network's.
pub fn load_rbm(path: &Path) -> Result<RbmModel> {
    load_of(path)
}

stored!(RbmModel, rbm_encoded_len, encode_rbm, parse_rbm);

fn unit(r: &mut Reader, what: &str) -> Result<crate::train::Unit> {
    let at = r.pos;
    let c = r.i32(what)?;
    unit_from_code(c).map_err(|_| arch_err(format_args!("{what} code {c} at offset {at} is not 0 or 1")))
}

fn parse_rbm(body: &[u8]) -> Result<RbmModel> {
    let mut r = Reader { rest: body, pos: 0 };
    let (_, kind, section) = header(&mut r)?;
    if kind != Kind::Rbm {
        let (holds, call) = kind.held();
        return Err(bad(format!("wrong kind: the file holds {holds}, not an RBM; load it with {call}")));
    }
    let mut a = Reader { rest: section, pos: HEADER_BYTES };
    let nv = units(&mut a, "visible units")?;
    let nh = units(&mut a, "hidden units")?;
    let visible = unit(&mut a, "visible unit kind")?;
    let hidden = unit(&mut a, "hidden unit kind")?;
    let seed = a.u64("seed")?;
    let epochs = a.u64("epochs trained")?;
    let k = a.u32("CD-k of the last fit")?;
    let at = a.pos;
    let persistent = match a.u32("persistent")? {
        0 => false,
        1 => true,
        v => return Err(arch_err(format_args!("persistent flag {v} at offset {at} is not 0 or 1"))),
    };
    if !a.rest.is_empty() {
        return Err(arch_err(format_args!(
            "the section is {} bytes, an RBM's fields take {RBM_ARCH_BYTES}",
            section.len()
        )));
    }
    let weights = (nv as u64) * (nh as u64);
    let implied = weights + nv as u64 + nh as u64;
    if implied > MAX_PARAMS as u64 {
        return Err(arch_err(format_args!("an RBM of {nv} x {nh} units has more than {MAX_PARAMS} parameters")));
    }
    let params = parameter_block(&mut r, implied)?;
    let mut rbm = Rbm::new(nv, nh, visible, hidden, seed).map_err(build_err)?;
    rbm.set_params(&params).map_err(build_err)?;
    Ok(RbmModel::from_rbm(rbm, seed, RbmTraining { epochs, k, persistent }))
}
