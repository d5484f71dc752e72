package tlsterm

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// shortNames are OpenSSL's short names of the attribute types of
// distinguished names, the names nginx's $ssl_client_s_dn prints. Go's
// pkix.Name.String knows fewer (emailAddress, DC and UID come out as OIDs)
// and does not keep the certificate's order.
var shortNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.4": "SN", "2.5.4.5": "serialNumber", "2.5.4.6": "C",
	"2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.9": "street", "2.5.4.10": "O",
	"2.5.4.11": "OU", "2.5.4.12": "title", "2.5.4.13": "description",
	"2.5.4.15": "businessCategory", "2.5.4.17": "postalCode", "2.5.4.41": "name",
	"2.5.4.42": "GN", "2.5.4.43": "initials", "2.5.4.44": "generationQualifier",
	"2.5.4.46": "dnQualifier", "2.5.4.65": "pseudonym",
	"1.2.840.113549.1.9.1":       "emailAddress",
	"0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1":  "UID",
}

// dnString prints a DER distinguished name (a certificate's RawSubject or
// RawIssuer) as OpenSSL's RFC 2253 form does (X509_NAME_print_ex with
// XN_FLAG_RFC2253, nginx's $ssl_client_s_dn): the last attribute first, attributes
// by short name, values escaped per RFC 2253 with control characters and bytes
// above 0x7f as backslash and two hex digits, so that the result is printable
// ASCII and safe in a request field; a type without a short name, or a value
// that is not a string, is the OID and "#" with the value's DER in hex.
func dnString(der []byte) string {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(der, &seq); err != nil || len(rest) > 0 {
		return ""
	}
	var b strings.Builder
	for i := len(seq) - 1; i >= 0; i-- {
		rdn := seq[i]
		for j := range rdn {
			atv := rdn[len(rdn)-1-j] // OpenSSL reverses every entry, those of a multi-valued RDN too
			switch {
			case j > 0:
				b.WriteByte('+')
			case i < len(seq)-1:
				b.WriteByte(',')
			}
			name, known := shortNames[atv.Type.String()]
			s, isString := atv.Value.(string)
			if !known || !isString {
				b.WriteString(atv.Type.String())
				b.WriteString("=#")
				v, err := asn1.Marshal(atv.Value)
				if err == nil {
					b.WriteString(strings.ToUpper(hex.EncodeToString(v)))
				}
				continue
			}
			b.WriteString(name)
			b.WriteByte('=')
			escapeValue(&b, s)
		}
	}
	return b.String()
}

// escapeValue writes an attribute value with RFC 2253's escapes and OpenSSL's
// hex escapes of control characters and of bytes above 0x7f.
func escapeValue(b *strings.Builder, s string) {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < ' ' || c >= 0x7f:
			b.WriteByte('\\')
			b.WriteString(strings.ToUpper(hex.EncodeToString([]byte{c})))
		case strings.IndexByte(`,+"\<>;`, c) >= 0,
			(c == '#' || c == ' ') && i == 0,
			c == ' ' && i == len(s)-1:
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
}
