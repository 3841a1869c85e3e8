package linux

import (
	"context"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/runtime/spec"
	"github.com/berth-dev/berth/internal/testutil"
)

// BenchmarkSpawn times Spawn alone (cold) and a Pool's Spawn with a spare ready (warm), up to the exec
// of `true`, and the cgroup removal that Wait leaves to the background. It reports medians: the machine
// is shared, and a mean would mostly measure the neighbours.
func BenchmarkSpawn(b *testing.B) {
	testutil.RequireRoot(b)
	testutil.RequireBusybox(b)
	rootfs := b.TempDir()
	testutil.BusyboxRootfs(b, rootfs)
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"cold", "warm"} {
		b.Run(mode, func(b *testing.B) {
			var pool *Pool
			if mode == "warm" {
				pool = NewPool(exe)
				defer pool.Close()
			}
			o := spec.Options{Rootfs: rootfs, Args: []string{"true"}, ID: "bench", CgroupsPath: cgroupPath("bench")}
			removeCgroupLeftovers(b, "bench")
			s, err := spec.Generate(o)
			if err != nil {
				b.Fatal(err)
			}
			bundle := b.TempDir()
			if err := spec.WriteBundle(bundle, s); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			var spawns, cleanups []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if pool != nil {
					b.StopTimer()
					if _, err := pool.waitSpare(ctx); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				t0 := time.Now()
				var p *Process
				if pool != nil {
					p, err = pool.Spawn(ctx, SpawnOptions{ID: "bench", Bundle: bundle, InitPath: exe})
				} else {
					p, err = Spawn(ctx, SpawnOptions{ID: "bench", Bundle: bundle, InitPath: exe})
				}
				if err != nil {
					b.Fatal(err)
				}
				spawns = append(spawns, time.Since(t0))
				if _, err := p.Wait(); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := p.WaitCleanup(ctx); err != nil {
					b.Fatal(err)
				}
				cleanups = append(cleanups, time.Since(t1))
			}
			b.ReportMetric(float64(median(spawns).Microseconds()), "spawn-µs")
			b.ReportMetric(float64(median(cleanups).Microseconds()), "cgroup-rm-µs")
		})
	}
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}
