# The compiled peerd binary in a small image. Build the binary first:
#   deno task compile            # writes dist/peerd
#   docker build -t peerd:latest .
# Then `peerd compose --agencies N` writes a compose file that runs the lottery from it;
# config (agency files) and data are mounted as volumes, so changing them needs no rebuild.
FROM debian:bookworm-slim
RUN useradd --create-home --uid 10001 peerd && mkdir -p /data /config && chown peerd /data
COPY dist/peerd /usr/local/bin/peerd
USER peerd
WORKDIR /home/peerd
ENTRYPOINT ["/usr/local/bin/peerd"]
CMD ["--help"]
