//! Networks in the model file: versions 1, 2, 4, 6, 7 and 8 (see the parent module's docs for
//! the layout).

use std::path::Path;

use super::*;

/// The serialised form of a network: exactly the bytes [`save`] writes.
pub fn to_bytes(net: &Network) -> Vec<u8> {
    to_bytes_of(net)
}

/// Parses a model file (see the module docs for what is checked). Every problem with the bytes
/// is [`Error::BadFormat`]; only a failed allocation of a well-formed, file-sized parameter
/// block is [`Error::OutOfMemory`].
pub fn from_bytes(bytes: &[u8]) -> Result<Network> {
    from_bytes_of(bytes)
}

/// Saves atomically: the file at `path` is either what it was before or the complete new
/// model, never a mixture, whatever fails (failures are [`Error::Io`], naming the path).
pub fn save(net: &Network, path: &Path) -> Result<()> {
    save_of(net, path)
}

/// Reads and parses a model file. A file that cannot be read is [`Error::Io`] naming the path;
/// one larger than [`MAX_FILE_BYTES`] is refused before reading; format problems are
/// [`Error::BadFormat`] with the path in front of the message.
pub fn load(path: &Path) -> Result<Network> {
    load_of(path)
}

stored!(Network, encoded_len, encode, parse);

fn arch_len(net: &Network) -> usize {
    let spec = net.spec();
    let v1 = ARCH_FIXED_BYTES + LAYER_BYTES * (spec.encoder.len() + spec.decoder_layers().len());
    let v2 = v1
        + REG_FIXED_BYTES
        + 4 * listed_layers(&spec.regularization).len()
        + 4
        + 8 * stochastic_layers(spec).map_or(0, |v| v.len());
    let v4 = v2 + 12 + 4 * connections(spec).len();
    match file_version(net) {
        1 => v1,
        2 => v2,
        NETWORK_V4 => v4,
        NETWORK_V6 => v4 + 4,
        _ => v4 + 4 + scaling_len(net.input_scaling()),
    }
}

/// The hidden layers' units in forward order, when any layer samples.
fn stochastic_layers(spec: &NetworkSpec) -> Option<Vec<Stochastic>> {
    let dec = spec.decoder_layers();
    let v: Vec<Stochastic> =
        spec.encoder.iter().chain(std::iter::once(&spec.code)).chain(dec.iter()).map(|l| l.stochastic).collect();
    v.iter().any(|s| !s.is_none()).then_some(v)
}

/// The regularisation block without its layer list.
const REG_FIXED_BYTES: usize = 36;

/// Every layer's connection in forward order (hidden layers, then the output layer).
fn connections(spec: &NetworkSpec) -> Vec<Connection> {
    let dec = spec.decoder_layers();
    spec.encoder
        .iter()
        .chain(std::iter::once(&spec.code))
        .chain(dec.iter())
        .map(|l| l.connection)
        .chain(std::iter::once(spec.output_connection))
        .collect()
}

/// The lowest version that holds the spec.
fn version_of(spec: &NetworkSpec) -> u32 {
    if spec.regularization.contractive_exact {
        NETWORK_V6
    } else if spec.task.is_supervised() || connections(spec).iter().any(|c| !c.is_dense()) {
        NETWORK_V4
    } else if spec.regularization == Regularization::default() && stochastic_layers(spec).is_none() {
        1
    } else {
        2
    }
}

/// The version a network is written as: 8 with a centred functional connection, else 7 with a
/// stored input scaling, else its spec's.
fn file_version(net: &Network) -> u32 {
    match (has_centred(net.spec()), *net.input_scaling().scaler() != Scaler::None) {
        (true, _) => CENTRED_VERSION,
        (false, true) => SCALING_VERSION,
        _ => version_of(net.spec()),
    }
}

/// Whether a layer's connection is a functional family measured from its value at 0.
fn has_centred(spec: &NetworkSpec) -> bool {
    connections(spec).iter().any(|c| matches!(c, Connection::Functional(f) if f.centred()))
}

fn listed_layers(r: &Regularization) -> &[usize] {
    match &r.sparse_layers {
        SparseLayers::Layers(v) => v,
        _ => &[],
    }
}

fn encoded_len(net: &Network) -> usize {
    HEADER_BYTES + arch_len(net) + 8 + 4 * net.param_count() + 4
}

fn encode<S: Sink>(net: &Network, out: &mut S) -> std::result::Result<(), S::Error> {
    let spec = net.spec();
    let decoder = spec.decoder_layers();
    let version = file_version(net);
    let mut head = Vec::with_capacity(HEADER_BYTES + arch_len(net) + 8);
    let u32_ = |h: &mut Vec<u8>, v: u32| h.extend_from_slice(&v.to_le_bytes());
    head.extend_from_slice(&MAGIC);
    u32_(&mut head, version);
    u32_(&mut head, 0);
    u32_(&mut head, u32_of(arch_len(net)));
    u32_(&mut head, u32_of(spec.input_dim));
    let layer = |h: &mut Vec<u8>, l: &LayerSpec| {
        h.extend_from_slice(&u32_of(l.units).to_le_bytes());
        h.extend_from_slice(&l.activation.code().to_le_bytes());
    };
    u32_(&mut head, u32_of(spec.encoder.len()));
    spec.encoder.iter().for_each(|l| layer(&mut head, l));
    layer(&mut head, &spec.code);
    u32_(&mut head, u32::from(spec.decoder.is_none()));
    u32_(&mut head, u32_of(decoder.len()));
    decoder.iter().for_each(|l| layer(&mut head, l));
    head.extend_from_slice(&spec.output_activation.code().to_le_bytes());
    head.extend_from_slice(&spec.loss.code().to_le_bytes());
    u32_(&mut head, u32::from(spec.tied_weights));
    head.extend_from_slice(&spec.init.code().to_le_bytes());
    head.extend_from_slice(&spec.seed.to_le_bytes());
    if version >= 2 {
        let r = &spec.regularization;
        let f32_ = |h: &mut Vec<u8>, v: f32| h.extend_from_slice(&canonical(v).to_le_bytes());
        let (rho, weight) = r.sparsity.parts();
        head.extend_from_slice(&r.sparsity.code().to_le_bytes());
        f32_(&mut head, rho);
        f32_(&mut head, weight);
        let (mode, n) = match &r.sparse_layers {
            SparseLayers::Code => (0, 0),
            SparseLayers::Layers(v) => (1, v.len()),
            SparseLayers::Alternate { start } => (2, *start),
        };
        u32_(&mut head, mode);
        u32_(&mut head, u32_of(n));
        listed_layers(r).iter().for_each(|&i| u32_(&mut head, u32_of(i)));
        f32_(&mut head, r.contractive);
        head.extend_from_slice(&r.corruption.code().to_le_bytes());
        f32_(&mut head, r.corruption.level());
        f32_(&mut head, r.code_noise);
        let st = stochastic_layers(spec).unwrap_or_default();
        u32_(&mut head, u32_of(st.len()));
        for u in st {
            head.extend_from_slice(&u.code().to_le_bytes());
            f32_(&mut head, u.sigma());
        }
    }
    if version >= NETWORK_V4 {
        head.extend_from_slice(&spec.task.code().to_le_bytes());
        let outputs = if spec.task.is_supervised() { spec.output_dim() } else { 0 };
        u32_(&mut head, u32_of(outputs));
        let conns = connections(spec);
        u32_(&mut head, u32_of(conns.len()));
        conns.iter().for_each(|c| head.extend_from_slice(&c.code().to_le_bytes()));
    }
    if version >= NETWORK_V6 {
        u32_(&mut head, u32::from(spec.regularization.contractive_exact));
    }
    if version >= SCALING_VERSION {
        put_scaling(&mut head, net.input_scaling());
    }
    head.extend_from_slice(&(net.param_count() as u64).to_le_bytes());
    out.put(&head)?;
    put_params(net.params(), out)
}

fn parse_arch(section: &[u8], version: u32) -> Result<(NetworkSpec, InputScaling)> {
    let mut r = Reader { rest: section, pos: HEADER_BYTES };
    let input_dim = units(&mut r, "input width")?;
    let n_enc = r.u32("encoder layer count")?;
    let encoder = layers(&mut r, n_enc, "encoder")?;
    let code = LayerSpec::new(units(&mut r, "code width")?, activation(&mut r, "code activation")?);
    let mirrored = flag(&mut r, "decoder-mirrored flag")?;
    let decoder = decoder_layers(&mut r, encoder.len())?;
    let output_activation = activation(&mut r, "output activation")?;
    let loss = coded(&mut r, "loss", Loss::from_code)?;
    let tied_weights = flag(&mut r, "tied-weights flag")?;
    let init = coded(&mut r, "init", Init::from_code)?;
    let seed = r.u64("seed")?;
    let (regularization, stochastic) = if version >= 2 {
        regularization(&mut r, encoder.len() + 1 + decoder.len(), version)?
    } else {
        Default::default()
    };
    let mut encoder = encoder;
    let mut code = code;
    let mut decoder = decoder;
    if !stochastic.is_empty() {
        let hidden = encoder.iter_mut().chain(std::iter::once(&mut code)).chain(decoder.iter_mut());
        for (l, s) in hidden.zip(stochastic) {
            l.stochastic = s;
        }
    }
    let (mut task, mut output_connection) = (Task::Reconstruct, Connection::Dense);
    if version >= NETWORK_V4 {
        let at = r.pos;
        let c = r.i32("task")?;
        let outputs = r.u32("outputs")? as usize;
        task = Task::from_code(c, outputs).map_err(|e| arch_err(format_args!("at offset {at}: {}", e.message())))?;
        if (task == Task::Reconstruct) != (outputs == 0) {
            return Err(arch_err(format_args!("task {} with {outputs} outputs at offset {at}", task.name())));
        }
        let at = r.pos;
        let n = r.u32("connection count")? as usize;
        let layers = encoder.len() + 1 + decoder.len() + 1;
        if n != layers {
            return Err(arch_err(format_args!("{n} connections at offset {at} for {layers} layers")));
        }
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            let at = r.pos;
            let c = r.i32("connection")?;
            conns
                .push(Connection::from_code(c).map_err(|e| arch_err(format_args!("at offset {at}: {}", e.message())))?);
        }
        output_connection = conns[n - 1];
        let hidden = encoder.iter_mut().chain(std::iter::once(&mut code)).chain(decoder.iter_mut());
        for (l, c) in hidden.zip(conns) {
            l.connection = c;
        }
        if version == NETWORK_V4 && task == Task::Reconstruct && output_connection.is_dense() && {
            let h = encoder.iter().chain(std::iter::once(&code)).chain(decoder.iter());
            h.clone().all(|l| l.connection.is_dense())
        } {
            return Err(arch_err(
                "a version-4 block that says \"autoencoder, dense layers\" (such a network is written as version 1 or 2)",
            ));
        }
    }
    let mut regularization = regularization;
    if version >= NETWORK_V6 {
        let at = r.pos;
        match r.u32("contractive mode")? {
            1 => regularization.contractive_exact = true,
            0 if version >= SCALING_VERSION => {}
            0 => {
                return Err(arch_err(format_args!(
                    "a version-6 file whose contractive mode at offset {at} is 0, per layer (such a network is written as version 1, 2 or 4)"
                )));
            }
            m => return Err(arch_err(format_args!("contractive mode {m} at offset {at} is not 0 or 1"))),
        }
    }
    let input = if version >= SCALING_VERSION {
        scaling_block(&mut r, input_dim, version == CENTRED_VERSION)?
    } else {
        InputScaling::default()
    };
    if !r.rest.is_empty() {
        return Err(arch_err(format_args!(
            "the section is {} bytes, version {version}'s fields take {}",
            section.len(),
            section.len() - r.rest.len()
        )));
    }
    let decoder = if mirrored {
        // A supervised network's unset decoder has no layers (it is never a mirror).
        if task.is_supervised() && !decoder.is_empty() {
            return Err(arch_err("a supervised network's decoder marked unset has layers"));
        }
        if !task.is_supervised() && !decoder.iter().eq(encoder.iter().rev()) {
            return Err(arch_err("the decoder is marked mirrored but is not the encoder reversed"));
        }
        None
    } else {
        Some(decoder)
    };
    let spec = NetworkSpec {
        input_dim,
        encoder,
        code,
        decoder,
        output_activation,
        output_connection,
        loss,
        tied_weights,
        init,
        seed,
        regularization,
        task,
    };
    Ok((spec, input))
}

/// The version-2 regularisation block. Values are range-checked with the network's spec when it
/// is built; here only what keeps the file canonical.
fn regularization(r: &mut Reader, n_hidden: usize, version: u32) -> Result<(Regularization, Vec<Stochastic>)> {
    let at = r.pos;
    let code = r.i32("sparsity code")?;
    let rho = f32_field(r, "sparsity target")?;
    let weight = f32_field(r, "sparsity weight")?;
    let sparsity = Sparsity::from_code(code, rho, weight)
        .map_err(|e| arch_err(format_args!("at offset {at}: {}", e.message())))?;
    if sparsity.parts() != (rho, weight) {
        return Err(arch_err(format_args!("sparsity at offset {at}: unused fields must be 0")));
    }
    let at = r.pos;
    let mode = r.u32("sparse layer mode")?;
    let n = r.u32("sparse layer count")? as usize;
    let sparse_layers = match mode {
        0 if n == 0 => SparseLayers::Code,
        1 => {
            if n > MAX_LAYERS || 4 * n > r.rest.len() {
                return Err(arch_err(format_args!(
                    "{n} sparse layers at offset {at}: more than {MAX_LAYERS} or than the section holds"
                )));
            }
            SparseLayers::Layers((0..n).map(|_| r.u32("sparse layer").map(|v| v as usize)).collect::<Result<_>>()?)
        }
        2 => SparseLayers::Alternate { start: n },
        _ => return Err(arch_err(format_args!("sparse layer mode {mode} (with {n}) at offset {at} is not 0, 1 or 2"))),
    };
    let contractive = f32_field(r, "contractive weight")?;
    let at = r.pos;
    let code = r.i32("corruption code")?;
    let level = f32_field(r, "corruption level")?;
    let corruption =
        Corruption::from_code(code, level).map_err(|e| arch_err(format_args!("at offset {at}: {}", e.message())))?;
    if corruption.level() != level {
        return Err(arch_err(format_args!("corruption at offset {at}: the level of no corruption must be 0")));
    }
    let code_noise = f32_field(r, "code noise")?;
    // The contractive mode (exact) is read from the version-6 field, after this block.
    let reg = Regularization { sparsity, sparse_layers, contractive, contractive_exact: false, corruption, code_noise };
    let at = r.pos;
    let count = r.u32("stochastic layer count")? as usize;
    if count != 0 && count != n_hidden {
        return Err(arch_err(format_args!(
            "{count} stochastic layer entries at offset {at}: 0 or one per hidden layer ({n_hidden})"
        )));
    }
    let mut stochastic = Vec::with_capacity(count);
    for _ in 0..count {
        let at = r.pos;
        let code = r.i32("stochastic unit code")?;
        let sigma = f32_field(r, "stochastic sigma")?;
        let u = Stochastic::from_code(code, sigma)
            .map_err(|e| arch_err(format_args!("at offset {at}: {}", e.message())))?;
        if u.sigma() != sigma {
            return Err(arch_err(format_args!("stochastic unit at offset {at}: sigma must be 0 unless Gaussian")));
        }
        stochastic.push(u);
    }
    if count > 0 && stochastic.iter().all(|s| s.is_none()) {
        return Err(arch_err("stochastic layer entries that are all deterministic (written as a count of 0)"));
    }
    if reg == Regularization::default() && count == 0 && version < NETWORK_V4 {
        return Err(arch_err(
            "a version-2 file without regularisation or stochastic layers (such a network is written as version 1)",
        ));
    }
    Ok((reg, stochastic))
}

/// The number of parameters `Network::new(spec)` holds, computed without allocating (the layer
/// structure of `Network`: dense layers input -> encoder -> code -> decoder -> input, a tied
/// decoder layer owning only its bias). None above MAX_PARAMS.
fn implied_params(spec: &NetworkSpec) -> Option<u64> {
    let decoder = spec.decoder_layers();
    let widths: Vec<u64> = std::iter::once(spec.input_dim)
        .chain(spec.encoder.iter().map(|l| l.units))
        .chain(std::iter::once(spec.code.units))
        .chain(decoder.iter().map(|l| l.units))
        .chain(std::iter::once(spec.output_dim()))
        .map(|u| u as u64)
        .collect();
    let conns = connections(spec);
    let n_encoder = spec.encoder.len() + 1;
    let mut total = 0u64;
    for (idx, pair) in widths.windows(2).enumerate() {
        let (n_in, n_out) = (pair[0], pair[1]);
        let own = if spec.tied_weights && idx >= n_encoder {
            n_out
        } else {
            conns[idx].params(usize::try_from(n_in).ok()?, usize::try_from(n_out).ok()?)? as u64
        };
        total = total.checked_add(own).filter(|&t| t <= MAX_PARAMS as u64)?;
    }
    Some(total)
}

/// The file without its CRC, which check_envelope() has verified.
fn parse(body: &[u8]) -> Result<Network> {
    let mut r = Reader { rest: body, pos: 0 };
    let (version, kind, section) = header(&mut r)?;
    if kind != Kind::Network {
        let (holds, call) = kind.held();
        return Err(bad(format!("wrong kind: the file holds {holds}; load it with {call}, not as a network")));
    }
    if version == RBM_VERSION {
        return Err(arch_err(format_args!(
            "a version-{version} file without flag bit 1 would be a network, which this build writes as \
             version 1, 2, 4 or 6 only (version 5 adds RBMs)"
        )));
    }
    if version == VAE_VERSION {
        return Err(arch_err(format_args!(
            "a version-{version} file without flag bit 0 would be a network, which this build writes as \
             version 1, 2, 4 or 6 only (version 3 adds variational autoencoders)"
        )));
    }
    let (spec, input) = parse_arch(section, version)?;
    let centred = has_centred(&spec);
    if version == CENTRED_VERSION && !centred {
        return Err(arch_err(
            "a version-8 file without a centred functional connection (such a network is written as version 7 or lower)",
        ));
    }
    let implied = implied_params(&spec)
        .ok_or_else(|| arch_err(format_args!("the network has more than {MAX_PARAMS} parameters")))?;
    let params = parameter_block(&mut r, implied)?;
    let mut net = Network::from_params(spec, &params).map_err(build_err)?;
    if centred && version < CENTRED_VERSION {
        net.fold_functional_offsets();
    }
    net.set_input_scaler(input.scaler().clone()).map_err(build_err)?;
    net.set_raw_input(input.raw());
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implied_params_matches_network() {
        use crate::Activation::*;
        let mut specs = vec![
            NetworkSpec::new(7, &[5, 3], Relu, 2),
            NetworkSpec::new(4, &[], Tanh, 4),
            NetworkSpec { tied_weights: true, ..NetworkSpec::new(9, &[6, 4], Sigmoid, 3) },
        ];
        specs.push(NetworkSpec {
            decoder: Some(vec![LayerSpec::new(11, Elu)]),
            ..NetworkSpec::new(6, &[5, 4], Gelu, 2)
        });
        for s in specs {
            let net = Network::new(s.clone()).unwrap();
            assert_eq!(implied_params(&s), Some(net.param_count() as u64), "{s:?}");
        }
    }
}
