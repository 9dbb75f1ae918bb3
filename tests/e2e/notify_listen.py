#!/usr/bin/env python3
"""Stands in for systemd's notify socket: binds a datagram socket at PATH and prints every
message received within SECONDS. Usage: notify_listen.py PATH SECONDS"""
import os
import socket
import sys
import time

path, secs = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(0.2)
end = time.time() + secs
print("listening", flush=True)
while time.time() < end:
    try:
        print(s.recv(4096).decode(errors="replace"), flush=True)
    except socket.timeout:
        pass
s.close()
os.unlink(path)
