// Exports a saved latent model for ONNX Runtime with latent.hpp: the network's encoder, decoder,
// reconstruction or predictions (docs/serving.md). ONNX Runtime's pip package ships no C/C++
// headers, so the serving side of this example is python/examples/onnx_serve.py, which runs the
// exported file in ONNX Runtime and compares it with latent.
//
//   onnx_export MODEL.latent OUT.onnx [encoder|decoder|reconstruction|predict]
#include <cstdio>
#include <cstring>
#include <string>

#include "latent.hpp"

int main(int argc, char **argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: onnx_export MODEL.latent OUT.onnx [encoder|decoder|reconstruction|predict]\n");
        return 2;
    }
    const char *names[] = {"encoder", "decoder", "reconstruction", "predict"};
    latent_onnx_part part = LATENT_ONNX_PART_ENCODER;
    if (argc > 3) {
        part = -1;
        for (int i = 0; i < 4; i++)
            if (std::strcmp(argv[3], names[i]) == 0) part = i;
        if (part < 0) {
            std::fprintf(stderr, "unknown part %s\n", argv[3]);
            return 2;
        }
    }
    try {
        const latent::Network net = latent::Network::load(argv[1]);
        net.export_onnx(argv[2], part);
        std::printf("wrote the %s of a %zu-input network to %s (ONNX opset %d)\n", names[part], net.input_dim(),
                    argv[2], LATENT_ONNX_OPSET);
    } catch (const latent::error &e) {
        std::fprintf(stderr, "onnx_export: %s\n", e.what());
        return 1;
    }
    return 0;
}
