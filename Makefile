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

# Installing (docs/building.md, "Installing"):
#   make install [PREFIX=/usr/local] [DESTDIR=]   release build, then lib/liblatent.so.<ABI> (+ the
#       liblatent.so link), lib/liblatent.a, include/latent.h, include/latent.hpp,
#       lib/pkgconfig/latent.pc and lib/cmake/latent/latentConfig{,Version}.cmake
#   make uninstall [PREFIX=...] [DESTDIR=]
# The library is built with cargo into $(CARGO_TARGET_DIR)/release (default target/release);
# LIB_BUILD_DIR=dir installs the liblatent.so and liblatent.a already in dir without building.
PREFIX ?= /usr/local
DESTDIR ?=
libdir = $(PREFIX)/lib
includedir = $(PREFIX)/include
TARGET_DIR := $(if $(CARGO_TARGET_DIR),$(CARGO_TARGET_DIR),target)
LIB_BUILD_DIR ?=
LIB_SRC = $(if $(LIB_BUILD_DIR),$(LIB_BUILD_DIR),$(TARGET_DIR)/release)
VERSION := $(shell sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)
VERSION_MAJOR = $(word 1,$(subst ., ,$(VERSION)))
VERSION_MINOR = $(word 2,$(subst ., ,$(VERSION)))
ABI := $(shell sed -n 's/^\#define LATENT_ABI_VERSION \([0-9]*\).*/\1/p' include/latent.h)
# What liblatent.a needs from the system, as `cargo rustc --release --lib --crate-type staticlib
# -- --print native-static-libs` reports it on Linux (rustc 1.88+, glibc).
NATIVE_STATIC_LIBS ?= -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
INSTALLED = $(libdir)/liblatent.so.$(ABI) $(libdir)/liblatent.so $(libdir)/liblatent.a \
	$(includedir)/latent.h $(includedir)/latent.hpp $(libdir)/pkgconfig/latent.pc \
	$(libdir)/cmake/latent/latentConfig.cmake $(libdir)/cmake/latent/latentConfigVersion.cmake
SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(libdir)|g' -e 's|@INCLUDEDIR@|$(includedir)|g' \
	-e 's|@LIBNAME@|lib|g' -e 's|@INCLUDENAME@|include|g' -e 's|@VERSION@|$(VERSION)|g' \
	-e 's|@VERSION_MAJOR@|$(VERSION_MAJOR)|g' -e 's|@VERSION_MINOR@|$(VERSION_MINOR)|g' -e 's|@ABI@|$(ABI)|g' \
	-e 's|@NATIVE_STATIC_LIBS@|$(NATIVE_STATIC_LIBS)|g' \
	-e 's|@NATIVE_STATIC_LIBS_CMAKE@|$(subst $(eval) ,;,$(strip $(NATIVE_STATIC_LIBS)))|g'

release:
	$(if $(LIB_BUILD_DIR),@true,CARGO_TARGET_DIR=$(TARGET_DIR) $(CARGO) build --release --lib)

install: release
	@test -n "$(ABI)" || { echo "install: no LATENT_ABI_VERSION in include/latent.h"; exit 1; }
	@test -f "$(LIB_SRC)/liblatent.so" && test -f "$(LIB_SRC)/liblatent.a" || \
	  { echo "install: no liblatent.so and liblatent.a in $(LIB_SRC)"; exit 1; }
	install -d "$(DESTDIR)$(libdir)/pkgconfig" "$(DESTDIR)$(libdir)/cmake/latent" "$(DESTDIR)$(includedir)"
	install -m 755 "$(LIB_SRC)/liblatent.so" "$(DESTDIR)$(libdir)/liblatent.so.$(ABI)"
	ln -sf "liblatent.so.$(ABI)" "$(DESTDIR)$(libdir)/liblatent.so"
	install -m 644 "$(LIB_SRC)/liblatent.a" "$(DESTDIR)$(libdir)/liblatent.a"
	install -m 644 include/latent.h include/latent.hpp "$(DESTDIR)$(includedir)/"
	$(SUBST) packaging/latent.pc.in > "$(DESTDIR)$(libdir)/pkgconfig/latent.pc"
	$(SUBST) packaging/latentConfig.cmake.in > "$(DESTDIR)$(libdir)/cmake/latent/latentConfig.cmake"
	$(SUBST) packaging/latentConfigVersion.cmake.in > "$(DESTDIR)$(libdir)/cmake/latent/latentConfigVersion.cmake"
	@echo "installed latent $(VERSION) (ABI $(ABI)) under $(DESTDIR)$(PREFIX)"

uninstall:
	rm -f $(addprefix "$(DESTDIR),$(addsuffix ",$(INSTALLED)))
	-rmdir "$(DESTDIR)$(libdir)/cmake/latent" 2>/dev/null

.PHONY: demo test data release install uninstall
