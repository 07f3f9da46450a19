"""A JSON-RPC conversation, framed as the Language Server Protocol frames
it, with a child through `Popen` pipes: the guest sends requests on the
child's stdin and reads the answers from its stdout, one at a time."""

import json

import wasmproc as subprocess

# The server: answers `initialize`, `textDocument/hover` (with the word
# and the line it was asked about), `shutdown`, and exits on `exit`.
SERVER = r"""
import json, sys
def read():
    length = None
    while True:
        line = sys.stdin.buffer.readline()
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return json.loads(sys.stdin.buffer.read(length))
def send(message):
    body = json.dumps(message).encode()
    sys.stdout.buffer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    sys.stdout.buffer.flush()
while True:
    message = read()
    if message is None or message["method"] == "exit":
        sys.exit(0 if message else 1)
    if message["method"] == "initialize":
        result = {"capabilities": {"hoverProvider": True}, "serverInfo": {"name": "tiny-lsp"}}
    elif message["method"] == "textDocument/hover":
        position = message["params"]["position"]
        result = {"contents": "hover at line %d" % position["line"]}
    elif message["method"] == "shutdown":
        result = None
    else:
        send({"jsonrpc": "2.0", "id": message.get("id"), "error": {"code": -32601, "message": "no method"}})
        continue
    send({"jsonrpc": "2.0", "id": message["id"], "result": result})
"""


class Client:
    """The guest's end of the conversation."""

    def __init__(self, child):
        self.child = child
        self.next_id = 1

    def send(self, method, params=None, notification=False):
        message = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        if not notification:
            message["id"] = self.next_id
            self.next_id += 1
        body = json.dumps(message).encode()
        self.child.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.child.stdin.flush()
        return message.get("id")

    def receive(self):
        length = None
        for line in self.child.stdout:
            if line == b"\r\n":
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return json.loads(self.child.stdout.read(length))

    def request(self, method, params=None):
        id = self.send(method, params)
        answer = self.receive()
        if answer.get("id") != id:
            raise RuntimeError(f"answer to {answer.get('id')}, not to {id}")
        return answer


def main():
    with subprocess.Popen(["python3", "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE) as child:
        client = Client(child)
        answer = client.request("initialize", {"processId": None, "capabilities": {}})
        print(f"initialize: {answer['result']['serverInfo']['name']} hover={answer['result']['capabilities']['hoverProvider']}")
        for line in (3, 14):
            answer = client.request("textDocument/hover", {"textDocument": {"uri": "file:///a.py"}, "position": {"line": line, "character": 0}})
            print(f"hover: {answer['result']['contents']}")
        answer = client.request("workspace/unknown")
        print(f"unknown: error {answer['error']['code']}")
        answer = client.request("shutdown")
        print(f"shutdown: result={answer['result']}")
        client.send("exit", notification=True)
        child.stdin.close()
        print(f"exit: {child.wait(timeout=10)}")
