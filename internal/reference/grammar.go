package reference

import "strings"

// The reference grammar, scanned by hand (see the package doc for why there is no regexp):
//
//	reference  := name [ ":" tag ] [ "@" digest ]
//	name       := [ domain "/" ] path-component { "/" path-component }
//	domain     := host [ ":" [0-9]+ ]
//	host       := domain-component { "." domain-component } | "[" [a-fA-F0-9:]+ "]"
//	domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//	path-component   := [a-z0-9]+ { ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ }
//	tag        := [\w][\w.-]{0,127}
//	digest     := algorithm ":" [0-9a-fA-F]{32,}
//	algorithm  := [A-Za-z][A-Za-z0-9]* { [-_+.] [A-Za-z][A-Za-z0-9]* }
//
// None of the pieces can contain "@", a tag cannot contain ":" or "/", and a domain is always
// followed by "/", so a reference splits deterministically: the digest after the first "@", the
// tag after a ":" that follows the last "/". Where a name could be read either as domain+path or
// as path alone ("a_b.c/d" is not a domain but is a path), the domain reading wins when it is
// valid, as with the original's regexp.

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func isAlnum(c byte) bool { return isLowerAlnum(c) || c >= 'A' && c <= 'Z' }

func isWord(c byte) bool { return isAlnum(c) || c == '_' }

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isIdentifier reports a bare 64-character lowercase hex string: an image ID, never a name.
func isIdentifier(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

func isTag(s string) bool {
	if s == "" || len(s) > 128 || !isWord(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isWord(c) && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func isDomainComponent(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

func isDomain(s string) bool {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 2 {
			return false
		}
		for i := 1; i < end; i++ {
			if !isHexDigit(s[i]) && s[i] != ':' {
				return false
			}
		}
		return end+1 == len(s) || s[end+1] == ':' && isDigits(s[end+2:])
	}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i+1:]
		if !isDigits(port) {
			return false
		}
	}
	for {
		comp, rest, more := strings.Cut(host, ".")
		if !isDomainComponent(comp) {
			return false
		}
		if !more {
			return true
		}
		host = rest
	}
}

func isPathComponent(s string) bool {
	if s == "" || !isLowerAlnum(s[0]) || !isLowerAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); {
		if isLowerAlnum(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && !isLowerAlnum(s[j]) {
			j++
		}
		switch sep := s[i:j]; {
		case sep == "." || sep == "_" || sep == "__":
		case strings.Trim(sep, "-") == "":
		default:
			return false
		}
		i = j
	}
	return true
}

func isPath(s string) bool {
	for {
		comp, rest, more := strings.Cut(s, "/")
		if !isPathComponent(comp) {
			return false
		}
		if !more {
			return true
		}
		s = rest
	}
}

func isDigestFormat(s string) bool {
	alg, hex, ok := strings.Cut(s, ":")
	if !ok || len(hex) < 32 {
		return false
	}
	for i := 0; i < len(hex); i++ {
		if !isHexDigit(hex[i]) {
			return false
		}
	}
	// Components are [A-Za-z][A-Za-z0-9]*, joined by single separators.
	start := true
	for i := 0; i < len(alg); i++ {
		c := alg[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			start = false
		case c >= '0' && c <= '9' && !start:
		case (c == '-' || c == '_' || c == '+' || c == '.') && !start:
			start = true
		default:
			return false
		}
	}
	return !start
}

// splitName splits a name into domain and path, preferring a domain when the first component
// is one; ok is false when the name is not valid at all.
func splitName(name string) (domain, path string, ok bool) {
	if first, rest, found := strings.Cut(name, "/"); found && isDomain(first) && isPath(rest) {
		return first, rest, true
	}
	return "", name, isPath(name)
}

// scan splits a full reference into its parts, or reports that the grammar rejects it.
func scan(s string) (repo repository, tag, dgst string, ok bool) {
	name, dgst, hasDigest := strings.Cut(s, "@")
	if hasDigest && !isDigestFormat(dgst) {
		return repo, "", "", false
	}
	if c := strings.LastIndexByte(name, ':'); c > strings.LastIndexByte(name, '/') {
		name, tag = name[:c], name[c+1:]
		if !isTag(tag) {
			return repo, "", "", false
		}
	}
	repo.domain, repo.path, ok = splitName(name)
	return repo, tag, dgst, ok
}
