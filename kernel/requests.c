// SPDX-License-Identifier: GPL-2.0
/*
 * Portal requests, served by the trapped task itself: its memory, its
 * process, its mappings and files, and the process list.
 */
#include <linux/kernel.h>
#include <linux/uaccess.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/mm.h>
#include <linux/fs.h>
#include <linux/fs_struct.h>
#include <linux/fdtable.h>
#include <linux/file.h>
#include <linux/slab.h>
#include <linux/dcache.h>
#include <linux/cred.h>
#include "sa.h"

#define SA_PTRLIST_MAX 4096

struct sa_resp {
	struct sa_slot_guest *g;
	void *data;
	size_t cap;
};

static void sa_fail(struct sa_resp *r, int err, u64 addr)
{
	r->g->status = err;
	r->g->fault_addr = addr;
}

/* Path of p into out (at most cap-1 bytes, NUL-terminated); length or -errno. */
static int sa_path(const struct path *p, char *out, size_t cap, bool *cut)
{
	char *tmp = kmalloc(PATH_MAX, GFP_ATOMIC);
	char *s;
	size_t n;

	if (!tmp)
		return -ENOMEM;
	s = d_path(p, tmp, PATH_MAX);
	if (IS_ERR(s)) {
		kfree(tmp);
		return PTR_ERR(s);
	}
	n = strlen(s);
	if (n >= cap) {
		n = cap - 1;
		*cut = true;
	}
	memcpy(out, s, n);
	out[n] = '\0';
	kfree(tmp);
	return n;
}

static void sa_read(struct sa_resp *r, u64 addr, u64 len)
{
	size_t n = min_t(u64, len, r->cap), left;

	left = copy_from_user(r->data, sa_uptr(addr), n);
	r->g->len = n - left;
	if (left)
		sa_fail(r, -EFAULT, addr + n - left);
}

static void sa_read_str(struct sa_resp *r, u64 addr, u64 max)
{
	size_t n = min_t(u64, max ? max : r->cap, r->cap);
	long got = strncpy_from_user(r->data, sa_uptr(addr), n);

	if (got < 0) {
		sa_fail(r, -EFAULT, addr);
		return;
	}
	r->g->len = got;
	if (got == n)
		r->g->rflags |= SA_RF_TRUNCATED;
}

/* NUL-terminated strings from a NULL-terminated pointer array, from index
 * start on; stops with SA_RF_MORE when the data area is full. */
static void sa_read_ptrlist(struct sa_resp *r, u64 addr, u64 start, u64 max)
{
	size_t pos = 0;
	u64 i, limit = max ? min_t(u64, max, SA_PTRLIST_MAX) : SA_PTRLIST_MAX;
	unsigned long ptr;
	long got;

	/* the task's own pointers: 8 bytes on a 64-bit kernel, 4 on a 32-bit one */
	for (i = start; i - start < limit; i++) {
		u64 at = addr + i * sizeof(ptr);

		if (get_user(ptr, (unsigned long __user *)sa_uptr(at))) {
			sa_fail(r, -EFAULT, at);
			break;
		}
		if (!ptr) {
			r->g->next = 0;
			goto out;
		}
		if (pos >= r->cap)
			break;
		got = strncpy_from_user(r->data + pos, (const char __user *)ptr, r->cap - pos);
		if (got < 0) {
			sa_fail(r, -EFAULT, ptr);
			break;
		}
		if (got == r->cap - pos) {
			/* Does not fit: only a first entry is sent cut. */
			if (r->g->count) {
				break;
			}
			((char *)r->data)[r->cap - 1] = '\0';
			r->g->rflags |= SA_RF_TRUNCATED;
			got = r->cap - 1;
		}
		pos += got + 1;
		r->g->count++;
	}
	r->g->rflags |= SA_RF_MORE;
	r->g->next = i;
out:
	r->g->len = pos;
}

static void sa_write(struct sa_resp *r, const void *h2g, u64 addr, u64 len)
{
	size_t left;

	if (len > SA_SLOT_H2G_SIZE) {
		sa_fail(r, -EINVAL, addr);
		return;
	}
	left = copy_to_user(sa_uptr(addr), h2g, len);
	r->g->len = len - left;
	if (left)
		sa_fail(r, -EFAULT, addr + len - left);
}

static size_t sa_copy_user_range(void *dst, unsigned long start, unsigned long end,
				 size_t cap, bool *cut)
{
	size_t n = end > start ? end - start : 0;

	if (n > cap) {
		n = cap;
		*cut = true;
	}
	if (n && copy_from_user(dst, (const void __user *)start, n))
		return 0;
	return n;
}

static void sa_proc(struct sa_resp *r)
{
	struct sa_proc_info *pi = r->data;
	char *p = r->data + sizeof(*pi);
	size_t room = r->cap - sizeof(*pi);
	struct mm_struct *mm = current->mm;
	struct file *exe = NULL;
	struct path pwd;
	bool cut = false;
	int n;

	memset(pi, 0, sizeof(*pi));
	pi->pid = current->pid;
	pi->tgid = current->tgid;
	rcu_read_lock();
	pi->ppid = task_tgid_nr(rcu_dereference(current->real_parent));
	rcu_read_unlock();
	pi->uid = from_kuid_munged(current_user_ns(), current_uid());
	__get_task_comm(pi->comm, sizeof(pi->comm), current);

	if (mm) {
		rcu_read_lock();
		exe = rcu_dereference(mm->exe_file);
		if (exe && !get_file_rcu(exe))
			exe = NULL;
		rcu_read_unlock();
	}
	if (exe) {
		n = sa_path(&exe->f_path, p, min_t(size_t, room, PATH_MAX), &cut);
		fput(exe);
		if (n > 0) {
			pi->exe_len = n;
			p += n;
			room -= n;
		}
	}
	if (current->fs) {
		get_fs_pwd(current->fs, &pwd);
		n = sa_path(&pwd, p, min_t(size_t, room, PATH_MAX), &cut);
		path_put(&pwd);
		if (n > 0) {
			pi->cwd_len = n;
			p += n;
			room -= n;
		}
	}
	if (mm)
		pi->argv_len = sa_copy_user_range(p, mm->arg_start, mm->arg_end, room, &cut);
	pi->flags = cut ? SA_RF_TRUNCATED : 0;
	r->g->len = sizeof(*pi) + pi->exe_len + pi->cwd_len + pi->argv_len;
	r->g->count = 1;
}

static const char *sa_anon_name(struct vm_area_struct *vma)
{
	struct mm_struct *mm = vma->vm_mm;

	if (vma->vm_ops && vma->vm_ops->name)
		return vma->vm_ops->name(vma);
	if (vma->vm_start <= mm->brk && vma->vm_end >= mm->start_brk)
		return "[heap]";
	if (vma->vm_start <= mm->start_stack && vma->vm_end >= mm->start_stack)
		return "[stack]";
	return NULL;
}

static void sa_map_entry(struct sa_map_entry *e, struct vm_area_struct *vma)
{
	const char *name;
	bool cut = false;
	int n = 0;

	memset(e, 0, sizeof(*e));
	e->start = vma->vm_start;
	e->end = vma->vm_end;
	e->offset = (u64)vma->vm_pgoff << PAGE_SHIFT;
	e->flags = (vma->vm_flags & VM_READ ? SA_MAP_READ : 0) |
		   (vma->vm_flags & VM_WRITE ? SA_MAP_WRITE : 0) |
		   (vma->vm_flags & VM_EXEC ? SA_MAP_EXEC : 0) |
		   (vma->vm_flags & VM_MAYSHARE ? SA_MAP_SHARED : 0);
	if (vma->vm_file) {
		e->inode = file_inode(vma->vm_file)->i_ino;
		n = sa_path(&vma->vm_file->f_path, e->path, sizeof(e->path), &cut);
	} else if ((name = sa_anon_name(vma))) {
		n = strscpy(e->path, name, sizeof(e->path));
	}
	e->path_len = n > 0 ? n : 0;
	if (cut)
		e->flags |= SA_MAP_PATH_TRUNCATED;
}

static void sa_maps(struct sa_resp *r, u64 start)
{
	struct mm_struct *mm = current->mm;
	struct sa_map_entry *e = r->data;
	size_t max = r->cap / sizeof(*e);
	struct vm_area_struct *vma;

	if (!mm)
		return;
	if (mmap_read_lock_killable(mm)) {
		sa_fail(r, -EINTR, start);
		return;
	}
	for (vma = find_vma(mm, start); vma; vma = find_vma(mm, start)) {
		if (r->g->count == max) {
			r->g->rflags |= SA_RF_MORE;
			break;
		}
		sa_map_entry(&e[r->g->count++], vma);
		start = vma->vm_end;
	}
	mmap_read_unlock(mm);
	r->g->next = start;
	r->g->len = r->g->count * sizeof(*e);
}

struct sa_fd_ctx {
	struct sa_resp *r;
	size_t max;
};

static int sa_fd_one(const void *arg, struct file *file, unsigned int fd)
{
	struct sa_fd_ctx *ctx = (struct sa_fd_ctx *)arg;
	struct sa_resp *r = ctx->r;
	struct sa_fd_entry *e = (struct sa_fd_entry *)r->data + r->g->count;
	bool cut = false;
	int n;

	if (r->g->count == ctx->max) {
		r->g->rflags |= SA_RF_MORE;
		r->g->next = fd;
		return 1;
	}
	memset(e, 0, sizeof(*e));
	e->fd = fd;
	n = sa_path(&file->f_path, e->path, sizeof(e->path), &cut);
	e->path_len = n > 0 ? n : 0;
	r->g->count++;
	return 0;
}

static void sa_fds(struct sa_resp *r, u64 start)
{
	struct sa_fd_ctx ctx = { .r = r, .max = r->cap / sizeof(struct sa_fd_entry) };

	if (current->files && start <= INT_MAX)
		iterate_fd(current->files, start, sa_fd_one, &ctx);
	r->g->len = r->g->count * sizeof(struct sa_fd_entry);
}

/* Processes in the kernel's list order; skip says how many came before. */
static void sa_procs(struct sa_resp *r, u64 skip)
{
	struct sa_task_entry *e = r->data;
	size_t max = r->cap / sizeof(*e);
	struct task_struct *p;
	u64 i = 0;

	rcu_read_lock();
	for_each_process(p) {
		const struct cred *cred;

		if (i++ < skip)
			continue;
		if (r->g->count == max) {
			r->g->rflags |= SA_RF_MORE;
			break;
		}
		memset(e, 0, sizeof(*e));
		e->pid = task_tgid_nr(p);
		e->ppid = task_tgid_nr(rcu_dereference(p->real_parent));
		cred = __task_cred(p);
		e->uid = from_kuid_munged(&init_user_ns, cred->uid);
		__get_task_comm(e->comm, sizeof(e->comm), p);
		e++;
		r->g->count++;
	}
	rcu_read_unlock();
	r->g->next = skip + r->g->count;
	r->g->len = r->g->count * sizeof(*e);
}

void sa_serve(struct sa_slot_guest *g, void *g2h, const void *h2g,
	      const struct sa_slot_host *req)
{
	struct sa_resp r = { .g = g, .data = g2h, .cap = SA_SLOT_G2H_SIZE };

	sa_resp_clear(g);
	switch (req->req) {
	case SA_REQ_READ:
		sa_read(&r, req->addr, req->len);
		break;
	case SA_REQ_READ_STR:
		sa_read_str(&r, req->addr, req->len);
		break;
	case SA_REQ_READ_PTRLIST:
		sa_read_ptrlist(&r, req->addr, req->arg, req->len);
		break;
	case SA_REQ_WRITE:
		sa_write(&r, h2g, req->addr, req->len);
		break;
	case SA_REQ_PROC:
		sa_proc(&r);
		break;
	case SA_REQ_MAPS:
		sa_maps(&r, req->addr);
		break;
	case SA_REQ_FDS:
		sa_fds(&r, req->arg);
		break;
	case SA_REQ_PROCS:
		sa_procs(&r, req->arg);
		break;
	default:
		sa_fail(&r, -EINVAL, 0);
	}
}
