package plumbing

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// IfName pads an interface name to the 16 bytes nftables compares iifname/oifname against.
func IfName(name string) []byte {
	b := make([]byte, 16)
	copy(b, name)
	return b
}

// IifIs matches packets that came in through the named interface.
func IifIs(name []byte) []expr.Any { return MetaCmp(expr.MetaKeyIIFNAME, expr.CmpOpEq, name) }

// IifNot matches packets that did not come in through the named interface.
func IifNot(name []byte) []expr.Any { return MetaCmp(expr.MetaKeyIIFNAME, expr.CmpOpNeq, name) }

// OifIs matches packets leaving through the named interface.
func OifIs(name []byte) []expr.Any { return MetaCmp(expr.MetaKeyOIFNAME, expr.CmpOpEq, name) }

// OifNot matches packets not leaving through the named interface.
func OifNot(name []byte) []expr.Any { return MetaCmp(expr.MetaKeyOIFNAME, expr.CmpOpNeq, name) }

// MetaCmp is one "meta key op value" match.
func MetaCmp(k expr.MetaKey, op expr.CmpOp, v []byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: k, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: v}}
}

// L4Proto matches the transport protocol ("tcp" or "udp").
func L4Proto(proto string) []expr.Any {
	return MetaCmp(expr.MetaKeyL4PROTO, expr.CmpOpEq, []byte{ProtoNum(proto)})
}

// DstPort matches the transport header's destination port (after an L4Proto match).
func DstPort(port uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: BigU16(port)},
	}
}

// DstAddr matches the IPv4 destination address.
func DstAddr(a netip.Addr) []expr.Any {
	b := a.As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b[:]},
	}
}

// ToLocal matches packets whose destination is an address of this namespace (fib daddr type local).
func ToLocal() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: NativeU32(unix.RTN_LOCAL)},
	}
}

// ProtoNum is the IP protocol number of "tcp" or "udp".
func ProtoNum(p string) byte {
	if p == "udp" {
		return unix.IPPROTO_UDP
	}
	return unix.IPPROTO_TCP
}

// BigU16 is v in network byte order, as ports are compared.
func BigU16(v uint16) []byte {
	b := make([]byte, 2)
	binary.BigEndian.PutUint16(b, v)
	return b
}

// NativeU32 is v in host byte order, as registers hold meta values, fib results and numgen output.
func NativeU32(v uint32) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, v)
	return b
}

// IPNet is a with a prefix length of bits, as netlink takes addresses.
func IPNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(bits, 32)}
}

// MACFor derives a MAC address from an IPv4 address as Docker does (02:42 and the address), so an
// interface's MAC is stable for its address and unique on its network.
func MACFor(a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}
}

// CtStatusDNAT matches connections whose destination was rewritten (ct status dnat).
func CtStatusDNAT() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: NativeU32(0x20), Xor: NativeU32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: NativeU32(0)},
	}
}
