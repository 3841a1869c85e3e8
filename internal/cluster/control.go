package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/internal/cluster/ca"
	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/cluster/transport"
	"github.com/berth-dev/berth/internal/errdefs"
	nettypes "github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/hashicorp/raft"
)

// The control RPCs are JSON over HTTP/1.1 on the transport's control streams.
//
// Public endpoints serve any node of the cluster (authenticated by its certificate, whose CN is the
// caller's node ID) or, for /join, a node holding a join token. Leader operations (/leader/<op>) run only
// on the leader and only for managers: a follower that gets a write forwards it there.
const (
	pathJoin      = "/join"
	pathHeartbeat = "/heartbeat"
	pathRenew     = "/renew"
	pathLeave     = "/leave"
	pathAddVoter  = "/add-voter"

	opApply = "apply"
	// opCreateNetwork allocates a network on the leader: one allocation at a time, from a store that
	// holds every earlier one.
	opCreateNetwork = "create-network"
	opAddVoter      = "add-voter"
	opHeartbeat     = "heartbeat"
	opRenew         = "renew"
	opLeave         = "leave"
	opDemote        = "demote"
)

type joinRequest struct {
	Token         string                 `json:"token"`
	CSR           []byte                 `json:"csr"`
	AdvertiseAddr string                 `json:"advertiseAddr"`
	Availability  swarm.NodeAvailability `json:"availability"`
	Description   NodeDescription        `json:"description"`
}

type joinResponse struct {
	NodeID    string `json:"nodeID"`
	ClusterID string `json:"clusterID"`
	Role      Role   `json:"role"`
	Cert      []byte `json:"cert"`
	CA        []byte `json:"ca"`
	Managers  []Peer `json:"managers"`
}

type applyResponse struct {
	Index uint64 `json:"index"`
}

type nodeRequest struct {
	NodeID string `json:"nodeID"`
	// CSR is a renewal's certificate request.
	CSR []byte `json:"csr,omitempty"`
	// Addr is the IP the node is seen at (heartbeats).
	Addr string `json:"addr,omitempty"`
}

type heartbeatResponse struct {
	Role     Role   `json:"role"`
	Managers []Peer `json:"managers"`
}

type renewResponse struct {
	Cert []byte `json:"cert"`
	CA   []byte `json:"ca"`
	Role Role   `json:"role"`
}

type controlError struct {
	Message string `json:"message"`
}

// controlHandler serves the control RPCs of manager m.
func (s *Service) controlHandler(m *manager) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pathJoin, func(w http.ResponseWriter, r *http.Request) {
		var req joinRequest
		if !readJSON(w, r, &req) {
			return
		}
		resp, err := s.admit(r.Context(), m, req, remoteIP(r))
		reply(w, resp, err)
	})
	// The node endpoints: the caller is who its certificate says.
	for path, op := range map[string]string{pathHeartbeat: opHeartbeat, pathRenew: opRenew, pathLeave: opLeave, pathAddVoter: opAddVoter} {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			id, _, ok := peer(w, r)
			if !ok {
				return
			}
			var req nodeRequest
			if !readJSON(w, r, &req) {
				return
			}
			req.NodeID = id
			if op == opHeartbeat && req.Addr == "" {
				req.Addr = remoteIP(r)
			}
			var out json.RawMessage
			err := s.leaderCall(r.Context(), m, op, req, &out)
			reply(w, out, err)
		})
	}
	mux.HandleFunc("POST "+pathAssignments, func(w http.ResponseWriter, r *http.Request) {
		id, _, ok := peer(w, r)
		if !ok {
			return
		}
		var req assignmentsRequest
		if !readJSON(w, r, &req) {
			return
		}
		if !m.isLeader() || !m.caughtUp.Load() {
			reply(w, nil, errNotCaughtUp)
			return
		}
		reply(w, m.assignments(r.Context(), id, req.Fingerprint), nil)
	})
	mux.HandleFunc("POST "+pathTaskStatus, func(w http.ResponseWriter, r *http.Request) {
		id, _, ok := peer(w, r)
		if !ok {
			return
		}
		var req taskStatusRequest
		if !readJSON(w, r, &req) {
			return
		}
		req.NodeID = id
		reply(w, nil, s.leaderCall(r.Context(), m, opTaskStatus, req, nil))
	})
	s.logHandlers(mux, m)
	mux.HandleFunc("POST /leader/{op}", func(w http.ResponseWriter, r *http.Request) {
		if id, role, ok := peer(w, r); !ok {
			return
		} else if role != ca.ManagerOU || !m.isManager(id) {
			reply(w, nil, errdefs.Forbidden(errors.New("only managers may call the leader")))
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
		if err != nil {
			reply(w, nil, err)
			return
		}
		if !m.isLeader() {
			reply(w, nil, errNotLeader)
			return
		}
		out, err := s.leaderOp(r.Context(), m, r.PathValue("op"), body)
		reply(w, out, err)
	})
	return mux
}

// peer returns the caller's node ID and role from its verified certificate.
func peer(w http.ResponseWriter, r *http.Request) (string, string, bool) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		reply(w, nil, errdefs.Forbidden(errors.New("a node certificate is required")))
		return "", "", false
	}
	c := r.TLS.VerifiedChains[0][0]
	return c.Subject.CommonName, ca.Role(c), true
}

func remoteIP(r *http.Request) string {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	return host
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<20)).Decode(v); err != nil {
		reply(w, nil, errdefs.InvalidParameter(fmt.Errorf("bad request: %w", err)))
		return false
	}
	return true
}

func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(errdefs.HTTPStatus(err))
		_ = json.NewEncoder(w).Encode(controlError{Message: err.Error()})
		return
	}
	if raw, ok := v.(json.RawMessage); ok && len(raw) == 0 {
		v = nil
	}
	_ = json.NewEncoder(w).Encode(v)
}

// leaderOp runs a leader operation; this node leads.
func (s *Service) leaderOp(ctx context.Context, m *manager, op string, body []byte) (any, error) {
	switch op {
	case opCreateNetwork:
		var req nettypes.CreateRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
		return m.createNetwork(req)
	case opApply:
		var cmd store.Command
		if err := json.Unmarshal(body, &cmd); err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
		idx, err := m.applyLocal(cmd)
		return applyResponse{Index: idx}, err
	case opTaskStatus:
		var req taskStatusRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
		return nil, m.acceptStatuses(req)
	}
	var req nodeRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	switch op {
	case opHeartbeat:
		return s.heartbeat(ctx, m, req)
	case opRenew:
		return s.renew(m, req)
	case opAddVoter:
		_, n, ok := m.node(req.NodeID)
		if !ok || n.Spec.Role != swarm.NodeRoleManager || n.RaftAddr == "" {
			return nil, errdefs.Forbidden(fmt.Errorf("node %s is not a manager", req.NodeID))
		}
		if err := m.raft.AddVoter(raft.ServerID(req.NodeID), raft.ServerAddress(n.RaftAddr), 0, 10*time.Second).Error(); err != nil {
			return nil, errdefs.Unavailable(fmt.Errorf("adding %s to raft: %w", req.NodeID, err))
		}
		return nil, nil
	case opLeave, opDemote:
		return nil, s.removeManager(ctx, m, req.NodeID, op == opLeave)
	}
	return nil, errdefs.NotFound(fmt.Errorf("unknown operation %q", op))
}

// leaderCall runs a leader operation here when this node leads, or on the leader. A missing leader is
// waited for a few seconds (an election takes about one), then reported as Docker does.
func (s *Service) leaderCall(ctx context.Context, m *manager, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var err error
		if m.isLeader() {
			var v any
			v, err = s.leaderOp(ctx, m, op, body)
			if err == nil && out != nil {
				b, _ := json.Marshal(v)
				return json.Unmarshal(b, out)
			}
		} else if addr, _ := m.raft.LeaderWithID(); addr != "" {
			err = s.client.post(ctx, string(addr), "/leader/"+op, body, out)
		} else {
			err = ErrNoLeader
		}
		if err == nil || !retryable(err) {
			return err
		}
		if time.Now().After(deadline) {
			return ErrNoLeader // leaders kept failing or stepping down: no quorum
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// retryable errors are those of a leader change in progress.
func retryable(err error) bool {
	if errors.Is(err, ErrNoLeader) || errors.Is(err, errNotLeader) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || strings.Contains(err.Error(), "connection refused") {
		return true
	}
	return errdefs.KindOf(err) == errdefs.KindUnavailable && strings.Contains(err.Error(), "not the raft leader")
}

// controlClient makes control calls with the node's identity.
type controlClient struct {
	// creds is the node's identity, read without s.mu: calls are made while it is held.
	creds atomic.Pointer[transport.Creds]
	tr    *http.Transport
}

func newControlClient() *controlClient {
	c := &controlClient{}
	c.tr = &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			creds := c.creds.Load()
			if creds == nil {
				return nil, ErrNotInSwarm
			}
			return transport.DialControl(ctx, addr, creds)
		},
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     30 * time.Second,
	}
	return c
}

// post calls path on the manager at addr.
func (c *controlClient) post(ctx context.Context, addr, path string, body []byte, out any) error {
	return do(ctx, &http.Client{Transport: c.tr}, addr, path, body, out)
}

func do(ctx context.Context, hc *http.Client, addr, path string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the dial or TLS error; the URL is ours, not the user's
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var ce controlError
		_ = json.NewDecoder(resp.Body).Decode(&ce)
		if ce.Message == "" {
			ce.Message = resp.Status
		}
		return kindFromStatus(resp.StatusCode, errors.New(ce.Message))
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func kindFromStatus(code int, err error) error {
	switch code {
	case http.StatusNotFound:
		return errdefs.NotFound(err)
	case http.StatusConflict:
		return errdefs.Conflict(err)
	case http.StatusBadRequest:
		return errdefs.InvalidParameter(err)
	case http.StatusServiceUnavailable:
		if err.Error() == errNotLeader.Error() {
			return errNotLeader
		}
		if err.Error() == ErrNoLeader.Error() {
			return ErrNoLeader
		}
		return errdefs.Unavailable(err)
	case http.StatusForbidden:
		return errdefs.Forbidden(err)
	}
	return err
}

// joinCall sends a join request to addr, pinning the CA the token names.
func joinCall(ctx context.Context, addr, caDigest string, req joinRequest) (joinResponse, error) {
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, a string) (net.Conn, error) {
			return transport.DialJoin(ctx, a, caDigest)
		},
		DisableKeepAlives: true,
	}}
	body, _ := json.Marshal(req)
	var resp joinResponse
	err := do(ctx, hc, addr, pathJoin, body, &resp)
	return resp, err
}
