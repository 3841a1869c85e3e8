package registry

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Auth modes: the challenge a client gets on a request without valid credentials.
const (
	AuthBasic = "basic" // WWW-Authenticate: Basic; every request carries the htpasswd credentials
	AuthToken = "token" // WWW-Authenticate: Bearer; clients trade credentials for a token at /token
)

type authMode int

const (
	authBasic authMode = iota
	authToken
)

const tokenPath = "/token"

// tokenTTL is how long an issued token is good for; clients fetch a new one on 401.
const tokenTTL = 15 * time.Minute

// AuthConfig configures NewAuth.
type AuthConfig struct {
	Htpasswd string // bcrypt htpasswd file (user:hash lines)
	Mode     string // AuthBasic or AuthToken ("" = token)
	Realm    string // token endpoint URL announced in challenges; "" = this server's /token
	Service  string // the token audience; "" = "berth-registry"
}

// Auth checks credentials from an htpasswd file and, in token mode, issues and checks HMAC-signed
// bearer tokens (JWT form, HS256). Every user in the file may pull, push and delete everywhere: the
// registry authenticates, it has no per-repository ACLs. The signing key is made at start, so tokens
// do not outlive the process; clients simply ask for a new one.
type Auth struct {
	mode    authMode
	realm   string
	service string
	users   map[string][]byte
	key     []byte

	mu    sync.Mutex
	valid map[string][32]byte // user → sha256 of the last password that matched, to skip bcrypt
}

// NewAuth reads the htpasswd file. Only bcrypt entries are accepted (htpasswd -B), as docker's
// registry does.
func NewAuth(c AuthConfig) (*Auth, error) {
	a := &Auth{realm: c.Realm, service: c.Service, users: map[string][]byte{}, valid: map[string][32]byte{}}
	switch c.Mode {
	case "", AuthToken:
		a.mode = authToken
	case AuthBasic:
		a.mode = authBasic
	default:
		return nil, fmt.Errorf("unknown auth mode %q (basic or token)", c.Mode)
	}
	if a.service == "" {
		a.service = "berth-registry"
	}
	f, err := os.Open(c.Htpasswd)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(hash, "$2") {
			return nil, fmt.Errorf("%s:%d: not a bcrypt htpasswd entry (use htpasswd -B)", c.Htpasswd, n)
		}
		a.users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	a.key = make([]byte, 32)
	if _, err := rand.Read(a.key); err != nil {
		return nil, err
	}
	return a, nil
}

// check verifies a user's password.
func (a *Auth) check(user, pass string) bool {
	hash, ok := a.users[user]
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(pass))
	a.mu.Lock()
	prev, seen := a.valid[user]
	a.mu.Unlock()
	if seen && subtle.ConstantTimeCompare(prev[:], sum[:]) == 1 {
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil {
		return false
	}
	a.mu.Lock()
	a.valid[user] = sum
	a.mu.Unlock()
	return true
}

// scope is one access request: "repository:<name>:pull,push" or "registry:catalog:*".
type scope struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

func (s scope) String() string { return s.Type + ":" + s.Name + ":" + strings.Join(s.Actions, ",") }

func parseScope(v string) (scope, bool) {
	typ, rest, ok1 := strings.Cut(v, ":")
	i := strings.LastIndex(rest, ":")
	if !ok1 || i < 0 {
		return scope{}, false
	}
	return scope{Type: typ, Name: rest[:i], Actions: strings.Split(rest[i+1:], ",")}, true
}

// requiredScopes is what a request needs: pull to read, push to write (docker clients ask for
// pull,push together), delete to delete, and pull on the source of a cross-repository mount.
func requiredScopes(rt route, r *http.Request) []scope {
	switch rt.kind {
	case "base":
		return nil
	case "catalog":
		return []scope{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}
	}
	var out []scope
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		out = append(out, scope{"repository", rt.name, []string{"pull"}})
	case http.MethodDelete:
		out = append(out, scope{"repository", rt.name, []string{"delete"}})
	default:
		out = append(out, scope{"repository", rt.name, []string{"pull", "push"}})
		if from := r.URL.Query().Get("from"); rt.kind == "upload" && from != "" && r.URL.Query().Get("mount") != "" {
			out = append(out, scope{"repository", from, []string{"pull"}})
		}
	}
	return out
}

// authorize lets the request through or answers 401 with the challenge the client needs.
func (a *Auth) authorize(w http.ResponseWriter, r *http.Request, need []scope) bool {
	if a.mode == authToken {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			granted, err := a.verifyToken(tok)
			if err == nil && covers(granted, need) {
				return true
			}
			a.challenge(w, r, need, err == nil)
			return false
		}
	}
	if user, pass, ok := r.BasicAuth(); ok && a.check(user, pass) {
		return true
	}
	a.challenge(w, r, need, false)
	return false
}

func (a *Auth) challenge(w http.ResponseWriter, r *http.Request, need []scope, insufficient bool) {
	if a.mode == authBasic {
		w.Header().Set("WWW-Authenticate", `Basic realm="berth-registry"`)
	} else {
		realm := a.realm
		if realm == "" {
			scheme := "http"
			if r.TLS != nil {
				scheme = "https"
			}
			realm = scheme + "://" + r.Host + tokenPath
		}
		c := fmt.Sprintf(`Bearer realm=%q,service=%q`, realm, a.service)
		if len(need) > 0 {
			parts := make([]string, len(need))
			for i, s := range need {
				parts[i] = s.String()
			}
			c += fmt.Sprintf(`,scope=%q`, strings.Join(parts, " "))
		}
		if insufficient {
			c += `,error="insufficient_scope"`
		}
		w.Header().Set("WWW-Authenticate", c)
	}
	writeError(w, r, errf(http.StatusUnauthorized, codeUnauthorized, "authentication required"))
}

func covers(granted, need []scope) bool {
	for _, n := range need {
		ok := false
		for _, g := range granted {
			if g.Type != n.Type || g.Name != n.Name {
				continue
			}
			if slices.Contains(g.Actions, "*") || !slices.ContainsFunc(n.Actions, func(act string) bool { return !slices.Contains(g.Actions, act) }) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

type tokenClaims struct {
	Issuer    string  `json:"iss"`
	Subject   string  `json:"sub"`
	Audience  string  `json:"aud"`
	IssuedAt  int64   `json:"iat"`
	NotBefore int64   `json:"nbf"`
	Expires   int64   `json:"exp"`
	Access    []scope `json:"access"`
}

var b64 = base64.RawURLEncoding

const jwtHeader = `{"alg":"HS256","typ":"JWT"}`

func (a *Auth) sign(c tokenClaims) string {
	body, _ := json.Marshal(c)
	msg := b64.EncodeToString([]byte(jwtHeader)) + "." + b64.EncodeToString(body)
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(msg))
	return msg + "." + b64.EncodeToString(m.Sum(nil))
}

func (a *Auth) verifyToken(tok string) ([]scope, error) {
	i := strings.LastIndex(tok, ".")
	if i < 0 {
		return nil, errors.New("malformed token")
	}
	sig, err := b64.DecodeString(tok[i+1:])
	if err != nil {
		return nil, errors.New("malformed token")
	}
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(tok[:i]))
	if !hmac.Equal(sig, m.Sum(nil)) {
		return nil, errors.New("bad token signature")
	}
	head, body, ok := strings.Cut(tok[:i], ".")
	if !ok {
		return nil, errors.New("malformed token")
	}
	if h, err := b64.DecodeString(head); err != nil || string(h) != jwtHeader {
		return nil, errors.New("unsupported token header")
	}
	raw, err := b64.DecodeString(body)
	if err != nil {
		return nil, errors.New("malformed token")
	}
	var c tokenClaims
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, errors.New("malformed token")
	}
	now := time.Now().Unix()
	if c.Audience != a.service || now >= c.Expires || now < c.NotBefore-60 {
		return nil, errors.New("token expired or not for this service")
	}
	return c.Access, nil
}

// serveToken is the token endpoint of docker's token auth flow: GET with basic credentials and
// ?service=&scope=..., or the OAuth2 password grant by POST. Any authenticated user gets what it asks
// for among pull, push, delete and *.
func (a *Auth) serveToken(w http.ResponseWriter, r *http.Request) {
	var user, pass string
	var ok bool
	q := r.URL.Query()
	switch r.Method {
	case http.MethodGet:
		user, pass, ok = r.BasicAuth()
	case http.MethodPost:
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "password" {
			// No refresh tokens are issued, so only the password grant exists.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"unsupported_grant_type"}`))
			return
		}
		user, pass, ok = r.PostForm.Get("username"), r.PostForm.Get("password"), true
		q = r.PostForm
	default:
		writeError(w, r, errMethod())
		return
	}
	if !ok || !a.check(user, pass) {
		w.Header().Set("WWW-Authenticate", `Basic realm="berth-registry"`)
		writeError(w, r, errf(http.StatusUnauthorized, codeUnauthorized, "invalid username or password"))
		return
	}
	if svc := q.Get("service"); svc != "" && svc != a.service {
		writeError(w, r, errf(http.StatusBadRequest, codeDenied, "unknown service "+svc))
		return
	}
	var access []scope
	for _, v := range q["scope"] {
		for _, one := range strings.Fields(v) {
			s, ok := parseScope(one)
			if !ok {
				continue
			}
			var acts []string
			for _, act := range s.Actions {
				if act == "pull" || act == "push" || act == "delete" || act == "*" {
					acts = append(acts, act)
				}
			}
			s.Actions = acts
			access = append(access, s)
		}
	}
	now := time.Now()
	tok := a.sign(tokenClaims{
		Issuer: a.service, Subject: user, Audience: a.service,
		IssuedAt: now.Unix(), NotBefore: now.Unix(), Expires: now.Add(tokenTTL).Unix(), Access: access,
	})
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token": tok, "access_token": tok, "expires_in": int(tokenTTL.Seconds()), "issued_at": now.UTC().Format(time.RFC3339),
	})
}
