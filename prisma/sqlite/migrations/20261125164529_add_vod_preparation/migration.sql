-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_VodResource" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "path" TEXT NOT NULL,
    "sizeBytes" INTEGER NOT NULL,
    "container" TEXT NOT NULL,
    "durationSeconds" REAL NOT NULL,
    "videoCodec" TEXT,
    "videoProfile" TEXT,
    "width" INTEGER,
    "height" INTEGER,
    "frameRate" REAL,
    "videoDurationSeconds" REAL,
    "audioCodec" TEXT,
    "audioSampleRate" INTEGER,
    "audioChannels" INTEGER,
    "audioDurationSeconds" REAL,
    "copyable" BOOLEAN NOT NULL,
    "state" TEXT NOT NULL DEFAULT 'READY',
    "preparedPath" TEXT,
    "prepareProgress" REAL NOT NULL DEFAULT 1,
    "prepareError" TEXT,
    "transcodeProfile" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
INSERT INTO "new_VodResource" ("audioChannels", "audioCodec", "audioDurationSeconds", "audioSampleRate", "container", "copyable", "createdAt", "durationSeconds", "frameRate", "height", "id", "name", "path", "sizeBytes", "videoCodec", "videoDurationSeconds", "videoProfile", "width") SELECT "audioChannels", "audioCodec", "audioDurationSeconds", "audioSampleRate", "container", "copyable", "createdAt", "durationSeconds", "frameRate", "height", "id", "name", "path", "sizeBytes", "videoCodec", "videoDurationSeconds", "videoProfile", "width" FROM "VodResource";
DROP TABLE "VodResource";
ALTER TABLE "new_VodResource" RENAME TO "VodResource";
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;
