# One image: Telegraf, and octopus-telegraf for its inputs.execd to launch.
# docker build -t octopus-telegraf . && docker run --env-file telegraf/.env -v octopus-state:/var/lib/octopus-telegraf octopus-telegraf
# (the entrypoint drops the InfluxDB and Grafana passwords of that file before Telegraf starts)
FROM telegraf:1.36 AS telegraf

FROM python:3.12-slim
COPY --from=telegraf /usr/bin/telegraf /usr/bin/telegraf

WORKDIR /build
COPY pyproject.toml README.md ./
COPY plugin ./plugin
RUN pip install --no-cache-dir . \
    && rm -rf /build \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/octopus-telegraf --shell /usr/sbin/nologin telegraf \
    && mkdir -p /var/lib/octopus-telegraf /etc/telegraf/telegraf.d /etc/telegraf/telegraf-live.d \
    && chown telegraf:telegraf /var/lib/octopus-telegraf \
    && chmod 0700 /var/lib/octopus-telegraf \
    && octopus-telegraf sample-config > /etc/telegraf/telegraf.d/octopus-telegraf.conf \
    && cp /etc/telegraf/telegraf.d/octopus-telegraf.conf /etc/telegraf/telegraf-live.d/ \
    && octopus-telegraf sample-config --live > /etc/telegraf/telegraf-live.d/octopus-telegraf-live.conf
COPY telegraf/telegraf.conf /etc/telegraf/telegraf.conf
COPY telegraf/entrypoint.sh /usr/local/bin/octopus-telegraf-entrypoint

WORKDIR /var/lib/octopus-telegraf
ENV OCTO_STATE_DIR=/var/lib/octopus-telegraf \
    PYTHONUNBUFFERED=1
VOLUME ["/var/lib/octopus-telegraf"]
USER 10001:10001
# OCTO_LIVE=true: the Home Mini live block too (telegraf/entrypoint.sh)
ENTRYPOINT ["/usr/local/bin/octopus-telegraf-entrypoint"]
