"""A small program with a few hot spots, for scripts/example."""
import json
import time


def parse(blob):
    return json.loads(blob)


def checksum(data):
    total = 0
    for i, value in enumerate(data["values"]):
        total = (total * 31 + value * i) % 1000003
    return total


def render(data):
    return ",".join(str(v) for v in data["values"])


def handle_request(blob):
    data = parse(blob)
    checksum(data)
    render(data)


def main():
    blob = json.dumps({"values": list(range(2000))})
    deadline = time.time() + 3.0
    while time.time() < deadline:
        handle_request(blob)


if __name__ == "__main__":
    main()
