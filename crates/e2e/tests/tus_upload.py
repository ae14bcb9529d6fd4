"""A real tus client (tuspy) for the upload tests.

Creates an upload (or resumes one given --url) and sends --file in --chunk-size chunks,
stopping at --stop-at bytes if given. Prints {"url": ..., "offset": ...} as JSON.
"""
import argparse
import json
import time

from tusclient import client
from tusclient.exceptions import TusCommunicationError

parser = argparse.ArgumentParser()
parser.add_argument("--endpoint", required=True)
parser.add_argument("--token", required=True)
parser.add_argument("--file", required=True)
parser.add_argument("--chunk-size", type=int, default=1 << 20)
parser.add_argument("--stop-at", type=int, default=None)
parser.add_argument("--url", default=None)
parser.add_argument("--meta", action="append", default=[], help="key=value")
args = parser.parse_args()

tus = client.TusClient(args.endpoint, headers={"Authorization": "Bearer " + args.token})
metadata = dict(item.split("=", 1) for item in args.meta)

uploader = tus.uploader(
    file_path=args.file,
    chunk_size=args.chunk_size,
    metadata=metadata,
    url=args.url,
    retries=3,
    retry_delay=1,
)
# tuspy retries each chunk (`retries`) but not the creation: an application retries a
# creation the server answered 502/503 (a replica or store failing over) the same way.
for attempt in range(5):
    if uploader.url:
        break
    try:
        uploader.set_url(uploader.create_url())
        uploader.offset = 0
    except TusCommunicationError as e:
        if e.status_code not in (502, 503) or attempt == 4:
            raise
        time.sleep(1)
uploader.upload(stop_at=args.stop_at)
print(json.dumps({"url": uploader.url, "offset": uploader.offset}))
