/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The connections of the store's deferrable threads (the indexer's, the
 * checkpointer's) give way to the ack path while SQLite works for them: a
 * progress handler during statements, and a thin VFS over the default one
 * during checkpoints, which run no statement (each copies thousands of
 * pages in one call). Both call parley_sched_give_way(). */
#define G_LOG_DOMAIN "parley-store"

#include "parley-store-private.h"

#include "parley-sched.h"

#include <string.h>

/* Virtual machine instructions between two calls of the progress handler
 * (a few microseconds of work). */
#define GIVE_WAY_VM_STEPS 1000

#define GIVE_WAY_VFS_NAME "parley-give-way"

typedef struct {
  sqlite3_file base;
  sqlite3_file *real;   /* the default VFS's file, right behind this struct */
} GiveWayFile;

static sqlite3_vfs give_way_vfs;

static sqlite3_file *
real_file (sqlite3_file *file)
{
  return ((GiveWayFile *) file)->real;
}

static int
gw_close (sqlite3_file *file)
{
  sqlite3_file *real = real_file (file);

  return real->pMethods != NULL ? real->pMethods->xClose (real) : SQLITE_OK;
}

static int
gw_read (sqlite3_file *file,
         void         *buf,
         int           amount,
         sqlite3_int64 offset)
{
  sqlite3_file *real = real_file (file);

  parley_sched_give_way ();
  return real->pMethods->xRead (real, buf, amount, offset);
}

static int
gw_write (sqlite3_file *file,
          const void   *buf,
          int           amount,
          sqlite3_int64 offset)
{
  sqlite3_file *real = real_file (file);

  parley_sched_give_way ();
  return real->pMethods->xWrite (real, buf, amount, offset);
}

static int
gw_truncate (sqlite3_file *file,
             sqlite3_int64 size)
{
  sqlite3_file *real = real_file (file);

  return real->pMethods->xTruncate (real, size);
}

static int
gw_sync (sqlite3_file *file,
         int           flags)
{
  sqlite3_file *real = real_file (file);

  return real->pMethods->xSync (real, flags);
}

static int
gw_file_size (sqlite3_file  *file,
              sqlite3_int64 *size)
{
  sqlite3_file *real = real_file (file);

  return real->pMethods->xFileSize (real, size);
}

static int
gw_lock (sqlite3_file *file,
         int           level)
{
  sqlite3_file *real = real_file (file);

  return real->pMethods->xLock (real, level);
}

static int
gw_unlock (sqlite3_file *file,
           int           level)
{
  sqlite3_file *real = real_file (file);

  return real->pMethods->xUnlock (real, level);
}

static int
gw_check_reserved_lock (sqlite3_file *file,
                        int          *reserved)
{
  sqlite3_file *real = real_file (file);

  return real->pMethods->xCheckReservedLock (real, reserved);
}

static int
gw_file_control (sqlite3_file *file,
                 int           op,
                 void         *arg)
{
  sqlite3_file *real = real_file (file);

  return real->pMethods->xFileControl (real, op, arg);
}

static int
gw_sector_size (sqlite3_file *file)
{
  sqlite3_file *real = real_file (file);

  return real->pMethods->xSectorSize (real);
}

static int
gw_device_characteristics (sqlite3_file *file)
{
  sqlite3_file *real = real_file (file);

  return real->pMethods->xDeviceCharacteristics (real);
}

static int
gw_shm_map (sqlite3_file  *file,
            int            region,
            int            size,
            int            extend,
            void volatile **pages)
{
  sqlite3_file *real = real_file (file);

  if (real->pMethods->iVersion < 2)
    return SQLITE_IOERR;
  return real->pMethods->xShmMap (real, region, size, extend, pages);
}

static int
gw_shm_lock (sqlite3_file *file,
             int           offset,
             int           n,
             int           flags)
{
  sqlite3_file *real = real_file (file);

  if (real->pMethods->iVersion < 2)
    return SQLITE_IOERR;
  return real->pMethods->xShmLock (real, offset, n, flags);
}

static void
gw_shm_barrier (sqlite3_file *file)
{
  sqlite3_file *real = real_file (file);

  if (real->pMethods->iVersion >= 2)
    real->pMethods->xShmBarrier (real);
}

static int
gw_shm_unmap (sqlite3_file *file,
              int           delete_flag)
{
  sqlite3_file *real = real_file (file);

  if (real->pMethods->iVersion < 2)
    return SQLITE_OK;
  return real->pMethods->xShmUnmap (real, delete_flag);
}

static int
gw_fetch (sqlite3_file  *file,
          sqlite3_int64  offset,
          int            amount,
          void         **pages)
{
  sqlite3_file *real = real_file (file);

  if (real->pMethods->iVersion < 3) {
    *pages = NULL;   /* no memory map: SQLite reads instead */
    return SQLITE_OK;
  }
  return real->pMethods->xFetch (real, offset, amount, pages);
}

static int
gw_unfetch (sqlite3_file  *file,
            sqlite3_int64  offset,
            void          *pages)
{
  sqlite3_file *real = real_file (file);

  if (real->pMethods->iVersion < 3)
    return SQLITE_OK;
  return real->pMethods->xUnfetch (real, offset, pages);
}

static const sqlite3_io_methods give_way_io = {
  .iVersion = 3,
  .xClose = gw_close,
  .xRead = gw_read,
  .xWrite = gw_write,
  .xTruncate = gw_truncate,
  .xSync = gw_sync,
  .xFileSize = gw_file_size,
  .xLock = gw_lock,
  .xUnlock = gw_unlock,
  .xCheckReservedLock = gw_check_reserved_lock,
  .xFileControl = gw_file_control,
  .xSectorSize = gw_sector_size,
  .xDeviceCharacteristics = gw_device_characteristics,
  .xShmMap = gw_shm_map,
  .xShmLock = gw_shm_lock,
  .xShmBarrier = gw_shm_barrier,
  .xShmUnmap = gw_shm_unmap,
  .xFetch = gw_fetch,
  .xUnfetch = gw_unfetch,
};

static int
gw_open (sqlite3_vfs  *vfs,
         const char   *name,
         sqlite3_file *file,
         int           flags,
         int          *out_flags)
{
  sqlite3_vfs *real_vfs = vfs->pAppData;
  GiveWayFile *gw = (GiveWayFile *) file;
  int rc;

  gw->real = (sqlite3_file *) &gw[1];
  rc = real_vfs->xOpen (real_vfs, name, gw->real, flags, out_flags);
  /* SQLite calls xClose whenever pMethods is set, even after a failed
   * open; gw_close() passes that on only if the real file has methods. */
  gw->base.pMethods = &give_way_io;
  return rc;
}

static int
gw_delete (sqlite3_vfs *vfs,
           const char  *name,
           int          sync_dir)
{
  sqlite3_vfs *real_vfs = vfs->pAppData;

  return real_vfs->xDelete (real_vfs, name, sync_dir);
}

static int
gw_access (sqlite3_vfs *vfs,
           const char  *name,
           int          flags,
           int         *result)
{
  sqlite3_vfs *real_vfs = vfs->pAppData;

  return real_vfs->xAccess (real_vfs, name, flags, result);
}

static int
gw_full_pathname (sqlite3_vfs *vfs,
                  const char  *name,
                  int          n_out,
                  char        *out)
{
  sqlite3_vfs *real_vfs = vfs->pAppData;

  return real_vfs->xFullPathname (real_vfs, name, n_out, out);
}

static int
gw_randomness (sqlite3_vfs *vfs,
               int          n,
               char        *out)
{
  sqlite3_vfs *real_vfs = vfs->pAppData;

  return real_vfs->xRandomness (real_vfs, n, out);
}

static int
gw_sleep (sqlite3_vfs *vfs,
          int          microseconds)
{
  sqlite3_vfs *real_vfs = vfs->pAppData;

  return real_vfs->xSleep (real_vfs, microseconds);
}

static int
gw_current_time (sqlite3_vfs *vfs,
                 double      *now)
{
  sqlite3_vfs *real_vfs = vfs->pAppData;

  return real_vfs->xCurrentTime (real_vfs, now);
}

static int
gw_get_last_error (sqlite3_vfs *vfs,
                   int          n,
                   char        *out)
{
  sqlite3_vfs *real_vfs = vfs->pAppData;

  return real_vfs->xGetLastError != NULL ? real_vfs->xGetLastError (real_vfs, n, out) : 0;
}

static int
gw_current_time_int64 (sqlite3_vfs   *vfs,
                       sqlite3_int64 *now)
{
  sqlite3_vfs *real_vfs = vfs->pAppData;
  double days;
  int rc;

  if (real_vfs->iVersion >= 2 && real_vfs->xCurrentTimeInt64 != NULL)
    return real_vfs->xCurrentTimeInt64 (real_vfs, now);
  rc = real_vfs->xCurrentTime (real_vfs, &days);
  *now = (sqlite3_int64) (days * 86400000.0);
  return rc;
}

static gpointer
register_vfs (gpointer data)
{
  sqlite3_vfs *real_vfs = sqlite3_vfs_find (NULL);

  if (real_vfs == NULL)
    return NULL;

  /* No dynamic loading, no system-call overrides: SQLite does without. */
  give_way_vfs = (sqlite3_vfs) {
    .iVersion = 2,
    .szOsFile = (int) sizeof (GiveWayFile) + real_vfs->szOsFile,
    .mxPathname = real_vfs->mxPathname,
    .zName = GIVE_WAY_VFS_NAME,
    .pAppData = real_vfs,
    .xOpen = gw_open,
    .xDelete = gw_delete,
    .xAccess = gw_access,
    .xFullPathname = gw_full_pathname,
    .xRandomness = gw_randomness,
    .xSleep = gw_sleep,
    .xCurrentTime = gw_current_time,
    .xGetLastError = gw_get_last_error,
    .xCurrentTimeInt64 = gw_current_time_int64,
  };
  if (sqlite3_vfs_register (&give_way_vfs, 0) != SQLITE_OK)
    return NULL;
  return (gpointer) GIVE_WAY_VFS_NAME;
}

static int
give_way_progress (void *data)
{
  parley_sched_give_way ();
  return 0;   /* go on */
}

/* The VFS for a deferrable connection: its name, or NULL (the default VFS)
 * if it cannot be registered. */
const char *
store_give_way_vfs (void)
{
  static GOnce once = G_ONCE_INIT;

  return g_once (&once, register_vfs, NULL);
}

/* Makes @db, opened with store_give_way_vfs(), give way during statements
 * too. */
void
store_give_way_during_statements (sqlite3 *db)
{
  sqlite3_progress_handler (db, GIVE_WAY_VM_STEPS, give_way_progress, NULL);
}
