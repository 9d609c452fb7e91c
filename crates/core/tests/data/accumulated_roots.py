# Independent reference for tests/properties.rs::accumulated_digest_of_100k_roots.
# Python hashlib, stack-based RFC 6962 tree; prints SHA-256 over the roots of
# sizes 1..=100000 where leaf i = SHA-256(0x00 || i as 8-byte big-endian).
# Run: python3 crates/core/tests/data/accumulated_roots.py
import hashlib
def H(b): return hashlib.sha256(b).digest()
stack=[]  # list of (size, hash)
acc=hashlib.sha256()
for i in range(100000):
    h=H(b'\x00'+i.to_bytes(8,'big'))
    stack.append((1,h))
    while len(stack)>=2 and stack[-1][0]==stack[-2][0]:
        (s2,r),(s1,l)=stack.pop(),stack.pop()
        stack.append((s1+s2,H(b'\x01'+l+r)))
    root=stack[-1][1]
    for s,l in reversed(stack[:-1]):
        root=H(b'\x01'+l+root)
    acc.update(root)
print(acc.hexdigest())
