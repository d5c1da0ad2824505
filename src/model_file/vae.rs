//! Variational autoencoders in the model file: version 3 (flag bit 0) and the scaling of
//! version 7 (see the parent module's docs for the layout).

use std::path::Path;

use super::*;

/// The serialised form of a variational autoencoder: exactly the bytes [`save_vae`] writes.
pub fn vae_to_bytes(vae: &Vae) -> Vec<u8> {
    to_bytes_of(vae)
}

/// Parses a VAE model file, checked as [`from_bytes`] checks a network's. A network's file is
/// [`Error::BadFormat`] "wrong kind".
pub fn vae_from_bytes(bytes: &[u8]) -> Result<Vae> {
    from_bytes_of(bytes)
}

/// Saves a variational autoencoder atomically, as [`save`] saves a network.
pub fn save_vae(vae: &Vae, path: &Path) -> Result<()> {
    save_of(vae, path)
}

/// Reads and parses a VAE model file, as [`load`] reads a network's.
pub fn load_vae(path: &Path) -> Result<Vae> {
    load_of(path)
}

stored!(Vae, vae_encoded_len, encode_vae, parse_vae);

/// The VAE architecture section without layers and parts.
const VAE_ARCH_FIXED_BYTES: usize = 68;
const PART_BYTES: usize = 12;

fn vae_arch_len(spec: &VaeSpec) -> usize {
    VAE_ARCH_FIXED_BYTES
        + LAYER_BYTES * (spec.encoder.len() + spec.decoder.len())
        + PART_BYTES * spec.reconstruction.parts.len()
}

/// The optional objective fields after the steps (a BILBO VAE only): the objective code, the
/// count of fitted prior log-variances (0 or latent_dim), and those values.
fn vae_objective_len(vae: &Vae) -> usize {
    let scaled = *vae.input_scaling().scaler() != Scaler::None;
    match vae.spec().objective {
        Objective::Elbo if !scaled => 0,
        // Version 7 always has the objective fields (so the scaling block after them is found).
        _ => 8 + 4 * vae.prior_log_variances().len() + if scaled { scaling_len(vae.input_scaling()) } else { 0 },
    }
}

fn vae_encoded_len(vae: &Vae) -> usize {
    HEADER_BYTES + vae_arch_len(vae.spec()) + vae_objective_len(vae) + 8 + 4 * vae.param_count() + 4
}

fn encode_vae<S: Sink>(vae: &Vae, out: &mut S) -> std::result::Result<(), S::Error> {
    let spec = vae.spec();
    let a = vae_arch_len(spec) + vae_objective_len(vae);
    let mut head = Vec::with_capacity(HEADER_BYTES + a + 8);
    let u32_ = |h: &mut Vec<u8>, v: u32| h.extend_from_slice(&v.to_le_bytes());
    let i32_ = |h: &mut Vec<u8>, v: i32| h.extend_from_slice(&v.to_le_bytes());
    head.extend_from_slice(&MAGIC);
    let scaled = *vae.input_scaling().scaler() != Scaler::None;
    u32_(&mut head, if scaled { SCALING_VERSION } else { VAE_VERSION });
    u32_(&mut head, FLAG_VAE);
    u32_(&mut head, u32_of(a));
    u32_(&mut head, u32_of(spec.input_dim));
    let layers = |h: &mut Vec<u8>, v: &[LayerSpec]| {
        h.extend_from_slice(&u32_of(v.len()).to_le_bytes());
        for l in v {
            h.extend_from_slice(&u32_of(l.units).to_le_bytes());
            h.extend_from_slice(&l.activation.code().to_le_bytes());
        }
    };
    layers(&mut head, &spec.encoder);
    u32_(&mut head, u32_of(spec.latent_dim));
    layers(&mut head, &spec.decoder);
    i32_(&mut head, spec.pzx_activation.code());
    let parts = &spec.reconstruction.parts;
    u32_(&mut head, u32_of(parts.len()));
    for p in parts {
        u32_(&mut head, u32_of(p.size));
        i32_(&mut head, p.kind.code());
        i32_(&mut head, p.activation.code());
    }
    u32_(&mut head, u32_of(spec.num_samples));
    head.extend_from_slice(&canonical(spec.beta).to_le_bytes());
    head.extend_from_slice(&spec.kl_warmup_steps.to_le_bytes());
    let (kind, log_variance) = match spec.posterior {
        Posterior::Learned => (0, 0f32),
        Posterior::Constant { log_variance } => (1, log_variance),
    };
    u32_(&mut head, kind);
    head.extend_from_slice(&canonical(log_variance).to_le_bytes());
    i32_(&mut head, spec.init.code());
    head.extend_from_slice(&spec.seed.to_le_bytes());
    head.extend_from_slice(&vae.steps().to_le_bytes());
    if spec.objective != Objective::Elbo || scaled {
        i32_(&mut head, spec.objective.code());
        let prior = vae.prior_log_variances();
        u32_(&mut head, u32_of(prior.len()));
        for &v in prior {
            head.extend_from_slice(&canonical(v).to_le_bytes());
        }
    }
    if scaled {
        put_scaling(&mut head, vae.input_scaling());
    }
    debug_assert_eq!(head.len(), HEADER_BYTES + a);
    head.extend_from_slice(&(vae.param_count() as u64).to_le_bytes());
    out.put(&head)?;
    put_params(vae.params(), out)
}

// ---------------------------------------------------------------------------------------------
// Reading

/// A VAE file without its CRC, which check_envelope() has verified.
fn parse_vae(body: &[u8]) -> Result<Vae> {
    let mut r = Reader { rest: body, pos: 0 };
    let (version, kind, section) = header(&mut r)?;
    if kind != Kind::Vae {
        let (holds, call) = kind.held();
        return Err(bad(format!(
            "wrong kind: the file holds {holds}, not a variational autoencoder; load it with {call}"
        )));
    }
    let (spec, steps, prior, input) = parse_vae_arch(section, version)?;
    spec.validate().map_err(build_err)?;
    let implied = implied_vae_params(&spec)
        .ok_or_else(|| arch_err(format_args!("the VAE has more than {MAX_PARAMS} parameters")))?;
    let params = parameter_block(&mut r, implied)?;
    let mut vae = Vae::from_params(spec, &params).map_err(build_err)?;
    vae.set_steps(steps);
    vae.set_prior_log_variances(&prior).map_err(build_err)?;
    vae.set_input_scaler(input.scaler().clone()).map_err(build_err)?;
    vae.set_raw_input(input.raw());
    Ok(vae)
}

/// The VAE architecture section: the spec, the steps trained and a BILBO VAE's fitted prior.
fn parse_vae_arch(section: &[u8], version: u32) -> Result<(VaeSpec, u64, Vec<f32>, InputScaling)> {
    let mut r = Reader { rest: section, pos: HEADER_BYTES };
    let input_dim = units(&mut r, "input width")?;
    let n_enc = r.u32("encoder layer count")?;
    let encoder = layers(&mut r, n_enc, "encoder")?;
    let latent_dim = units(&mut r, "latent width")?;
    let decoder = decoder_layers(&mut r, encoder.len())?;
    let pzx_activation = activation(&mut r, "pzx activation")?;
    let at = r.pos;
    let k = r.u32("part count")? as usize;
    if k == 0 || k > input_dim || k.saturating_mul(PART_BYTES) > r.rest.len() {
        return Err(arch_err(format_args!(
            "{k} reconstruction parts at offset {at}: not in 1..={input_dim} (the input width), or more than the \
             section's {} remaining bytes hold",
            r.rest.len()
        )));
    }
    let mut parts = Vec::with_capacity(k);
    for _ in 0..k {
        let size = units(&mut r, "part width")?;
        let kind = coded(&mut r, "distribution", DistKind::from_code)?;
        let activation = activation(&mut r, "part activation")?;
        parts.push(Part { size, kind, activation });
    }
    let at = r.pos;
    let num_samples = r.u32("samples per example")? as usize;
    if num_samples == 0 {
        return Err(arch_err(format_args!("samples per example at offset {at} is 0")));
    }
    let beta = f32_field(&mut r, "KL weight")?;
    let kl_warmup_steps = r.u64("KL warm-up steps")?;
    let at = r.pos;
    let kind = r.u32("posterior kind")?;
    let log_variance = f32_field(&mut r, "posterior log-variance")?;
    let posterior = match kind {
        0 if log_variance.to_bits() == 0 => Posterior::Learned,
        0 => {
            return Err(arch_err(format_args!(
                "a learned posterior variance with a constant log-variance of {log_variance} (must be 0) at offset {}",
                at + 4
            )));
        }
        1 => Posterior::Constant { log_variance },
        v => return Err(arch_err(format_args!("posterior kind {v} at offset {at} is not 0 or 1"))),
    };
    let init = coded(&mut r, "init", Init::from_code)?;
    let seed = r.u64("seed")?;
    let steps = r.u64("steps trained")?;
    // Optional: the objective fields of a BILBO VAE (an ELBO VAE's file ends at the steps);
    // always there in version 7, before the scaling block.
    let (mut objective, mut prior) = (Objective::Elbo, Vec::new());
    let scaled = version == SCALING_VERSION;
    if scaled || !r.rest.is_empty() {
        let at = r.pos;
        let c = r.i32("objective")?;
        objective = match Objective::from_code(c) {
            Ok(Objective::Bilbo) => Objective::Bilbo,
            Ok(Objective::Elbo) if scaled => Objective::Elbo,
            _ => {
                return Err(arch_err(format_args!(
                    "objective code {c} at offset {at} is not one this build writes (1, BILBO{})",
                    if scaled { "; 0, ELBO, in version 7" } else { "" }
                )));
            }
        };
        let at = r.pos;
        let n = r.u32("prior log-variance count")? as usize;
        if n != 0 && n != latent_dim {
            return Err(arch_err(format_args!(
                "{n} prior log-variances at offset {at}: a fitted prior has one per latent unit ({latent_dim}), or none"
            )));
        }
        if n != 0 && objective == Objective::Elbo {
            return Err(arch_err(format_args!("{n} prior log-variances at offset {at} for an ELBO VAE (it has none)")));
        }
        for _ in 0..n {
            prior.push(f32_field(&mut r, "prior log-variance")?);
        }
    }
    let input = if scaled { scaling_block(&mut r, input_dim, false)? } else { InputScaling::default() };
    if !r.rest.is_empty() {
        return Err(arch_err(format_args!(
            "the section is {} bytes, a VAE's fields take {}",
            section.len(),
            section.len() - r.rest.len()
        )));
    }
    let spec = VaeSpec {
        input_dim,
        encoder,
        latent_dim,
        decoder,
        pzx_activation,
        reconstruction: Reconstruction { parts },
        num_samples,
        beta,
        kl_warmup_steps,
        posterior,
        objective,
        init,
        seed,
    };
    Ok((spec, steps, prior, input))
}

/// The number of parameters `Vae::new(spec)` holds, computed without allocating (dense layers
/// input -> encoder -> head, latent -> decoder -> pre-output, then the global log-variances).
/// None above MAX_PARAMS.
fn implied_vae_params(spec: &VaeSpec) -> Option<u64> {
    let head = match spec.posterior {
        Posterior::Learned => 2 * spec.latent_dim,
        Posterior::Constant { .. } => spec.latent_dim,
    };
    let mut out_width = 0u64;
    let mut extra = 0u64;
    for p in &spec.reconstruction.parts {
        let per_column = if p.kind == DistKind::Gaussian { 2 } else { 1 };
        out_width = out_width.checked_add((p.size as u64).checked_mul(per_column)?)?;
        extra += (p.kind == DistKind::GaussianGlobal) as u64;
    }
    let encoder: Vec<u64> = std::iter::once(spec.input_dim)
        .chain(spec.encoder.iter().map(|l| l.units))
        .chain(std::iter::once(head))
        .map(|u| u as u64)
        .collect();
    let decoder: Vec<u64> = std::iter::once(spec.latent_dim as u64)
        .chain(spec.decoder.iter().map(|l| l.units as u64))
        .chain(std::iter::once(out_width))
        .collect();
    let mut total = extra;
    for pair in encoder.windows(2).chain(decoder.windows(2)) {
        let own = pair[0].checked_mul(pair[1])?.checked_add(pair[1])?;
        total = total.checked_add(own).filter(|&t| t <= MAX_PARAMS as u64)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implied_vae_params_matches_vae() {
        use crate::Activation::*;
        let mut specs = vec![VaeSpec::new(7, &[5, 3], 2, &[4], Relu), VaeSpec::new(4, &[], 3, &[], Tanh)];
        let mut s = VaeSpec::new(9, &[6], 2, &[6, 5], Elu);
        s.reconstruction = Reconstruction {
            parts: vec![
                Part { size: 3, kind: DistKind::Gaussian, activation: Identity },
                Part { size: 2, kind: DistKind::GaussianGlobal, activation: Identity },
                Part { size: 1, kind: DistKind::Bernoulli, activation: Sigmoid },
                Part { size: 2, kind: DistKind::Exponential, activation: Tanh },
                Part { size: 1, kind: DistKind::GaussianGlobal, activation: Identity },
            ],
        };
        s.posterior = Posterior::Constant { log_variance: -2.0 };
        specs.push(s);
        for s in specs {
            let vae = Vae::new(s.clone()).unwrap();
            assert_eq!(implied_vae_params(&s), Some(vae.param_count() as u64), "{s:?}");
        }
    }
}
