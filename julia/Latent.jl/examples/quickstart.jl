# Quickstart of the Julia bindings: an autoencoder on random column-major Float64 data.
#   cargo build --release --lib
#   LATENT_LIB=$PWD/target/release julia --project=julia/Latent.jl julia/Latent.jl/examples/quickstart.jl
# tests/c/julia_mirror.c makes the same calls, in the same order, from C.
using Latent
using Random

Random.seed!(1)
# 500 samples of 20 features lying near a 3-dimensional subspace, scaled into (0, 1).
z = randn(500, 3)
x = 1 ./ (1 .+ exp.(-(z * randn(3, 20) .+ 0.05 .* randn(500, 20))))

net = latent_network(20; encoder=[16], code=3, activation=:relu, output_activation=:sigmoid, seed=1)
println("untrained loss ", latent_loss(net, x))
h = latent_fit(net, x; epochs=20, batch_size=32, learning_rate=3e-3, seed=1, threads=2)
println("epoch ", h.epoch[end], ": train loss ", h.train_loss[end])
println("trained loss ", latent_loss(net, x))

codes = encode(net, x[1:5, :])            # 5 x 3
rec = reconstruct(net, x[1:5, :])         # 5 x 20
err = reconstruction_error(net, x[1:5, :])
println("codes of the first row ", codes[1, :], ", its error ", err[1])

path = joinpath(tempdir(), "quickstart.latent")
save_model(net, path)
back = load_model(path)
println("reloaded model gives identical codes: ", encode(back, x[1:5, :]) == codes)

# Float32 matrices work too, and bad input is a LatentError with the library's message.
encode(net, Float32.(x[1:2, :]))
try
    encode(net, x[:, 1:19])
catch e
    e isa LatentError || rethrow()
    println("wrong width: ", sprint(showerror, e))
end
