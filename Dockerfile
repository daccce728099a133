# syntax=docker/dockerfile:1
# gridbot's image: one image for every process (`gridbot webhook`, `gridbot scheduler`,
# `gridbot run`, the admin commands); docker-compose.yml shows a whole deployment.
#
#   docker build -t gridbot .
#   docker run --rm gridbot check-config /opt/gridbot/sample/deployment.yaml

# --- build: the project and its dependencies into a virtual environment --------------------
FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/gridbot
WORKDIR /src
# What `pip install .` needs and nothing else (.dockerignore keeps the rest out anyway).
COPY pyproject.toml README.md ./
COPY bot bot
COPY handlers handlers
COPY storage storage
COPY reports reports
# No dev extras: the image runs the bot, it does not test it.
RUN /opt/gridbot/bin/pip install .

# --- run: the slim base, the digest's Chinese font and the environment ---------------------
FROM python:3.11-slim-bookworm

# The weekly digest draws Chinese with Debian's WenQuanYi Micro Hei (reports/fonts.py).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install --yes --no-install-recommends \
        fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*

COPY --from=build /opt/gridbot /opt/gridbot
ENV PATH=/opt/gridbot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GRIDBOT_DATA_DIR=/data \
    GRIDBOT_WEBHOOK_HOST=0.0.0.0

# The catalogs are compiled here, while the package directory is still writable (the bot runs
# as a user who cannot write there), and the build fails early if the digest has no font.
RUN python -c "from bot.i18n import compile_catalogs; compile_catalogs()" \
    && python -c "from reports.fonts import cjk_font; print('digest font:', cjk_font())" \
    && gridbot --help >/dev/null \
    && ln -s "$(python -c 'import bot, pathlib; print(pathlib.Path(bot.__file__).parent / "sample")')" \
        /opt/gridbot/sample

# Photos (content-addressed under /data/photos), digests (/data/digests), and the SQLite
# database when GRIDBOT_DATABASE_URL is unset: the one directory to back up with the database.
RUN useradd --create-home --uid 10001 --user-group gridbot \
    && mkdir /data && chown gridbot:gridbot /data
VOLUME ["/data"]
USER gridbot
WORKDIR /home/gridbot

# `gridbot webhook` answers /healthz (database and Redis reachable); the other commands serve
# nothing, so for them the check passes while the process lives.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["python", "-c", "\
import os, sys, urllib.request; \
command = open('/proc/1/cmdline', 'rb').read().split(b'\\0'); \
sys.exit(0) if b'webhook' not in command else urllib.request.urlopen( \
    'http://127.0.0.1:%s/healthz' % os.environ.get('GRIDBOT_WEBHOOK_PORT', '8080'), timeout=4)"]

EXPOSE 8080
ENTRYPOINT ["gridbot"]
CMD ["--help"]
