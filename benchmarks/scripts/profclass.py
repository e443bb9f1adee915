#!/usr/bin/env python3
# profclass.py PROFILE...: CPU samples of a whole-run profile split by what the
# stack belongs to (first match wins: broker, client library, harness, GC,
# runtime), and the part spent in system calls (leaf frame a syscall/futex/epoll).
import subprocess, sys, re, collections
def ms(v):
    m = re.match(r'([\d.]+)(ms|s|us)', v)
    x = float(m.group(1)); return x*1000 if m.group(2)=='s' else (x/1000 if m.group(2)=='us' else x)
for p in sys.argv[1:]:
    out = subprocess.run(['go','tool','pprof','-traces',p],capture_output=True,text=True).stdout
    blocks = out.split('-----------+-------------------------------------------------------')
    cat = collections.Counter(); sysc = collections.Counter(); tot = 0
    for b in blocks[1:]:
        lines = [l for l in b.strip('\n').split('\n') if l.strip()]
        if not lines: continue
        first = lines[0].split()
        v = ms(first[0]); frames = [first[1]] + [l.strip() for l in lines[1:]]
        tot += v
        j = ' '.join(frames)
        if 'internal/mochi' in j or 'internal/embedbroker' in j: c = 'broker (mochi)'
        elif re.search(r'github\.com/mqttkeep/mqttkeep\.|github\.com/mqttkeep/mqttkeep/internal/wire|github\.com/mqttkeep/mqttkeep/filestore', j): c = 'client: mqttkeep'
        elif 'github.com/eclipse/paho' in j: c = 'client: paho'
        elif re.search(r'\bmain\.', j): c = 'harness (main.*, raw TCP helpers)'
        elif re.search(r'gcBgMarkWorker|bgsweep|bgscavenge|gcAssist', j): c = 'GC workers'
        else: c = 'runtime (scheduler, netpoll, timers)'
        cat[c] += v
        leaf = frames[0]
        if re.search(r'Syscall|futex|epollwait|usleep|nanosleep|sched_yield|madvise|mmap', leaf):
            sysc[c] += v
    print(f'{p.split("/")[-1]}: {tot:.0f} ms of samples')
    for c, v in cat.most_common():
        print(f'  {c:40s} {v:6.0f} ms {100*v/tot:5.1f} %   of which in syscalls {100*sysc[c]/tot:5.1f} %')
    print(f'  {"all in syscalls (kernel)":40s} {sum(sysc.values()):6.0f} ms {100*sum(sysc.values())/tot:5.1f} %')
