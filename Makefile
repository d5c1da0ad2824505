# The two commands of the README:
#   make demo    build the library and the C examples, train the quickstart autoencoder
#   make test    run the whole test suite (cargo test --release)
# Both first make sure Fashion-MNIST can be found (see `data`).
CARGO ?= cargo

demo: data
	$(CARGO) build --release --lib
	$(MAKE) -C c_examples all
	cd c_examples && ./build/quickstart

test: data
	$(CARGO) test --release

# The data resolver looks in $LATENT_DATA_DIR, ../shared/data and /usr/share/datasets. When none
# has Fashion-MNIST, install Debian's dataset-fashion-mnist as root, or say how.
data:
	@for d in "$$LATENT_DATA_DIR" ../shared/data /usr/share/datasets; do \
	  if [ -n "$$d" ] && [ -d "$$d/fashion-mnist" ]; then echo "data: fashion-mnist in $$d"; exit 0; fi; \
	done; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "data: installing Debian's dataset-fashion-mnist"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	else \
	  echo "data: Fashion-MNIST not found. Run 'sudo apt-get install dataset-fashion-mnist', or set"; \
	  echo "      LATENT_DATA_DIR to a folder holding fashion-mnist/ (and mnist/) IDX files."; \
	  echo "      Tests that need it will be reported as SKIPPED."; \
	fi

.PHONY: demo test data
